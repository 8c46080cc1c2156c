"""RetryLog: an error retried in a loop is logged at once, then at most once per interval
with how many tries in a row have failed, and its end is said once."""
from __future__ import annotations

import logging

from streamkit.clients import RetryLog

LOG = logging.getLogger("streamkit.test.retries")


def lines(caplog) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == LOG.name]


def test_a_lasting_failure_is_one_line_then_its_end(caplog):
    caplog.set_level(logging.INFO, LOG.name)
    retries = RetryLog(LOG, "fetch", every_s=3600)
    for i in range(50):
        retries.failed(OSError(f"down {i}"))
    retries.recovered()
    retries.recovered()  # nothing more to say
    assert lines(caplog) == [("WARNING", "fetch failed, retrying: OSError('down 0')"),
                             ("INFO", "fetch works again after 50 failed tries")]


def test_each_interval_says_how_many_tries_in_a_row_have_failed(caplog):
    caplog.set_level(logging.INFO, LOG.name)
    retries = RetryLog(LOG, "fetch", every_s=0)
    for i in range(3):
        retries.failed(OSError(str(i)))
    retries.recovered()
    retries.failed(OSError("again"))
    assert lines(caplog) == [
        ("WARNING", "fetch failed, retrying: OSError('0')"),
        ("WARNING", "fetch failed, retrying (2 tries in a row): OSError('1')"),
        ("WARNING", "fetch failed, retrying (3 tries in a row): OSError('2')"),
        ("INFO", "fetch works again after 3 failed tries"),
        ("WARNING", "fetch failed, retrying: OSError('again')")]
