"""streamkit: stateful stream processing in the Kafka Streams style, on Faust."""
import gc
from typing import TYPE_CHECKING, Any

# What the imports below make (Faust's app, aiohttp's server, streamkit: modules, classes,
# functions) lives as long as the process. The collector is paused while it is made and
# it is frozen after (gc.freeze, as the worker freezes what exists once started): else
# every full pass during the rest of a worker's start walks all of it again, 50-90 ms
# each. A full pass over the fresh import finds a few dozen kilobytes of garbage.
_collecting = gc.isenabled()
gc.disable()
try:
    from .app import App
    from .config import Settings
    from .dsl import (
        CogroupedStream,
        GroupedStream,
        GroupedTable,
        Stream,
        Table,
        WindowedCogroupedStream,
        WindowedStream,
        WindowedTable,
    )
    from .errors import (
        ApplicationShutdown,
        BrokerStartError,
        ConfigError,
        DecodeError,
        NotAWorker,
        PluginError,
        ProcessingStopped,
        ProductionFailed,
        ServiceError,
        StateDirectoryInUse,
        StoreMigrated,
        StoreUnavailable,
        StreamkitError,
        SuppressBufferFull,
        TopologyError,
    )
    from .joins.windowed import JoinWindows
    from .plugins import Plugin, plugin
    from .processing.context import RecordContext
    from .state.global_tables import GlobalTable
    from .windows import Hopping, Session, Sliding, Tumbling, WindowedKey
finally:
    gc.freeze()
    if _collecting:
        gc.enable()

__all__ = [
    "App", "Settings", "Stream", "GroupedStream", "GroupedTable", "CogroupedStream", "Table",
    "RecordContext",
    "StreamkitError", "ConfigError", "TopologyError", "BrokerStartError", "DecodeError",
    "StoreUnavailable", "StoreMigrated", "ProcessingStopped", "ProductionFailed",
    "ApplicationShutdown", "SuppressBufferFull", "StateDirectoryInUse", "NotAWorker",
    "create_gateway", "GatewayApp", "service", "ServiceRequest", "Reply", "ServiceError",
    "Tumbling", "Hopping", "Sliding", "Session", "WindowedStream", "WindowedTable",
    "WindowedCogroupedStream",
    "WindowedKey", "GlobalTable", "Plugin", "PluginError", "plugin",
    "JoinWindows",
]
__version__ = "0.1.0"

# The gateway and the service helper are imported when first named: a worker that uses
# neither starts without importing them.
_LAZY = {"create_gateway": ".gateway", "GatewayApp": ".gateway", "service": ".services",
         "ServiceRequest": ".services", "Reply": ".services"}

if TYPE_CHECKING:
    from .gateway import GatewayApp, create_gateway
    from .services import Reply, ServiceRequest, service


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
