import logging

import pytest

from streamkit.windows import late

pytest_plugins = ["streamkit.testing.pytest_plugin"]


@pytest.fixture
def late_log(caplog, monkeypatch):
    """caplog, taking the WARNING records of streamkit's late-record logger. A library that
    configures logging earlier in the session (logging.config.dictConfig disables the
    loggers that exist then, unless told otherwise) would otherwise silence it."""
    monkeypatch.setattr(late.log, "disabled", False)
    with caplog.at_level(logging.WARNING, logger=late.log.name):
        yield caplog
