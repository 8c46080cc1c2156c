"""streamkit: stateful stream processing in the Kafka Streams style, on Faust."""
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
                     PluginError,
                     ProcessingStopped,
                     ProductionFailed,
                     ServiceError,
                     StoreMigrated,
                     StoreUnavailable,
                     StreamkitError,
                     SuppressBufferFull,
                     TopologyError,
)
from .gateway import GatewayApp, create_gateway
from .joins.windowed import JoinWindows
from .plugins import Plugin, plugin
from .processing.context import RecordContext
from .services import Reply, ServiceRequest, service
from .state.global_tables import GlobalTable
from .windows import Hopping, Session, Sliding, Tumbling, WindowedKey

__all__ = [
    "App", "Settings", "Stream", "GroupedStream", "GroupedTable", "CogroupedStream", "Table",
    "RecordContext",
    "StreamkitError", "ConfigError", "TopologyError", "BrokerStartError", "DecodeError",
    "StoreUnavailable", "StoreMigrated", "ProcessingStopped", "ProductionFailed",
    "ApplicationShutdown", "SuppressBufferFull",
    "create_gateway", "GatewayApp", "service", "ServiceRequest", "Reply", "ServiceError",
    "Tumbling", "Hopping", "Sliding", "Session", "WindowedStream", "WindowedTable",
    "WindowedCogroupedStream",
    "WindowedKey", "GlobalTable", "Plugin", "PluginError", "plugin",
    "JoinWindows",
]
__version__ = "0.1.0"
