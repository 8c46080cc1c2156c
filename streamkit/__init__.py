"""streamkit: stateful stream processing in the Kafka Streams style, on Faust."""
from .app import App
from .config import Settings
from .errors import (BrokerStartError, ConfigError, DecodeError, ProcessingStopped,
                     StoreMigrated, StoreUnavailable, StreamkitError, TopologyError)
from .gateway import GatewayApp, Reply, ServiceError, ServiceRequest, create_gateway, service
from .joins.global_table import GlobalTable
from .plugins import Plugin, PluginError, plugin
from .processing.dsl import GroupedStream, Stream, Table, WindowedStream, WindowedTable
from .windows import Hopping, Session, Sliding, Tumbling, WindowedKey
from .joins.windowed import JoinWindows

__all__ = [
    "App", "Settings", "Stream", "GroupedStream", "Table",
    "StreamkitError", "ConfigError", "TopologyError", "BrokerStartError", "DecodeError",
    "StoreUnavailable", "StoreMigrated", "ProcessingStopped",
    "create_gateway", "GatewayApp", "service", "ServiceRequest", "Reply", "ServiceError",
    "Tumbling", "Hopping", "Sliding", "Session", "WindowedStream", "WindowedTable",
    "WindowedKey", "GlobalTable", "Plugin", "PluginError", "plugin",
    "JoinWindows",
]
__version__ = "0.1.0"
