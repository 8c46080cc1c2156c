"""streamkit: stateful stream processing in the Kafka Streams style, on Faust."""
from .app import App
from .config import Settings
from .errors import (BrokerStartError, ConfigError, DecodeError, ProcessingStopped,
                     StoreMigrated, StoreUnavailable, StreamkitError, TopologyError)
from .processing.dsl import GroupedStream, Stream, Table

__all__ = [
    "App", "Settings", "Stream", "GroupedStream", "Table",
    "StreamkitError", "ConfigError", "TopologyError", "BrokerStartError", "DecodeError",
    "StoreUnavailable", "StoreMigrated", "ProcessingStopped",
]
__version__ = "0.1.0"
