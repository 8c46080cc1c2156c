"""Reading a windowed table's contents whole, the same way on both flavors."""
from typing import Any


def window_items(wrapper: Any) -> dict[str, Any]:
    """Every (key, window) of a windowed table's underlying table on this worker, as
    {"<key>@<window start>": value}: the store returns keys as written, (key, (start, end))."""
    out = {}
    for k, v in wrapper.table.data.items():
        key, (start, _end) = k
        out[f"{key}@{int(start)}"] = v
    return out
