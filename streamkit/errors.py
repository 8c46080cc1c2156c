"""The exception tree; each class says what the caller should do next."""
from __future__ import annotations


class StreamkitError(Exception):
    """Base of every error streamkit raises."""


class ConfigError(StreamkitError, ValueError):
    """A setting is missing or malformed: fix it and start again."""


class TopologyError(StreamkitError, ValueError):
    """The processing topology cannot run as declared (for example, sources that are
    not co-partitioned): change the topology or the topics."""


class BrokerStartError(StreamkitError, RuntimeError):
    """The local dev broker did not start: read the message, free the port, retry."""


class DecodeError(StreamkitError, ValueError):
    """A record's key or value could not be decoded; the record goes to dead letters."""


class StoreUnavailable(StreamkitError):
    """The store is rebalancing or recovering: retry after a short wait."""


class StoreMigrated(StreamkitError):
    """This worker no longer owns the partition: rediscover the owner and retry there."""

    def __init__(self, message: str, owner: str | None = None) -> None:
        super().__init__(message)
        self.owner = owner


class ProcessingStopped(StreamkitError, RuntimeError):
    """A record failed on a source whose on_error is 'stop'; the worker stops."""
