"""Event-time windows with a required grace period, late records, and final results.

    from streamkit.windows import Tumbling
    counts = (app.source("clicks", timestamp=lambda c: c["ts_ms"]).group_by_key()
                 .windowed_by(Tumbling(size_ms=60_000, grace_ms=10_000))
                 .count("click-counts", emit="final", to="click-counts-final"))

See docs/windows.md for the semantics (bounds, grace, late records, emission, expiry).
"""
from .codec import WindowedKey
from .reads import WindowRow, fetch_window, fetch_windows
from .specs import Hopping, Session, Sliding, Tumbling, WindowSpec

__all__ = ["Tumbling", "Hopping", "Sliding", "Session", "WindowSpec", "WindowedKey",
           "WindowRow", "fetch_window", "fetch_windows"]
