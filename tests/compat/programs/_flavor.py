"""The one place where a compat program picks its App class.

COMPAT_FLAVOR=faust builds the program on faust.App, with the broker, data directory and web
port passed as options; COMPAT_FLAVOR=streamkit builds it on streamkit.App, which reads them
from the STREAMKIT_* environment. Everything else a program passes (its own options) is the
same for both flavors.
"""
from __future__ import annotations

import os
from typing import Any

import faust

FLAVOR = os.environ["COMPAT_FLAVOR"]
APP_ID = os.environ["COMPAT_APP_ID"]


def make_app(**options: Any) -> faust.App:
    """The program's app on the flavor's App class, with the program's own options.

    faust.App gets store="rocksdb://" (streamkit's default) unless the program gives a store;
    store=None means no store option at all, so that each App class uses its own default
    (Faust's is memory://)."""
    if "store" in options and options["store"] is None:
        del options["store"]
        own_default_store = True
    else:
        own_default_store = False
    if FLAVOR == "faust":
        where = dict(broker=os.environ["STREAMKIT_BROKER"], store="rocksdb://",
                     datadir=os.environ["STREAMKIT_DATA_DIR"], web_bind="127.0.0.1",
                     web_port=int(os.environ["STREAMKIT_WEB_PORT"]))
        if own_default_store:
            del where["store"]
        return faust.App(APP_ID, **{**where, **options})
    if FLAVOR == "streamkit":
        import streamkit
        app = streamkit.App(APP_ID, **options)
        assert isinstance(app, faust.App)
        return app
    raise RuntimeError(f"COMPAT_FLAVOR must be faust or streamkit, not {FLAVOR!r}")


def name(topic: str) -> str:
    """A topic name of this run's own: the app id is its prefix."""
    return f"{APP_ID}-{topic}"
