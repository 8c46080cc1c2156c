"""The exception tree; each class says what the caller should do next. Every one derives
from StreamkitError and, where there is one, from the built-in it resembles, so callers
can catch either."""
from __future__ import annotations

from typing import Any, Mapping


class StreamkitError(Exception):
    """Base of every error streamkit raises."""


# configuration and declaration -------------------------------------------------------
class ConfigError(StreamkitError, ValueError):
    """A setting is missing or malformed: fix it and start again."""


class TopologyError(StreamkitError, ValueError):
    """The processing topology cannot run as declared (for example, sources that are
    not co-partitioned, or a stream declared after the worker started): change the
    topology or the topics."""


class PluginError(StreamkitError, ImportError):
    """A plugin could not be loaded: fix or remove it (the message names it)."""


class BrokerStartError(StreamkitError, RuntimeError):
    """A local broker did not start: read the message (it says what to install, or which
    port is taken), then retry."""


# records ----------------------------------------------------------------------------
class DecodeError(StreamkitError, ValueError):
    """A record's key or value could not be decoded; the record goes to dead letters."""


class EnvelopeError(StreamkitError, ValueError):
    """A record that is not a valid request or reply envelope; it carries what could be
    read of it (a correlation id, a reply topic), so the sender can still be answered."""

    def __init__(self, message: str, partial: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.partial = dict(partial or {})


class ProcessingStopped(StreamkitError, RuntimeError):
    """A record failed on a source whose on_error is 'stop'; the worker stops."""


class SuppressBufferFull(StreamkitError, RuntimeError):
    """A suppression's buffer went past its max_records or max_bytes, and it was told to
    shut down when full (Table.suppress(shut_down_when_full=True)): never a dead letter,
    the worker's uncaught-error policy follows. Raise the limit, or let it emit early."""


class ProductionFailed(StreamkitError, RuntimeError):
    """The broker rejected a record the processing path wrote (too large, for example),
    and the topic's production-error policy is 'fail' (or it is a changelog): the input
    offsets since the last commit are not committed; fix the cause (the topic's
    max.message.bytes, the record) and restart, and the records are processed again."""


class ApplicationShutdown(StreamkitError, RuntimeError):
    """A worker of the app met an uncaught error under STREAMKIT_ON_UNCAUGHT_ERROR=
    shutdown_app, and every worker of the app stops: read the failing worker's log
    (the message names it and its error), fix the cause and start the workers again."""


# state and queries ------------------------------------------------------------------
class StateDirectoryInUse(StreamkitError, RuntimeError):
    """Another worker of the app runs on this state directory (`<data dir>/<app id>`):
    give each worker of an app its own STREAMKIT_DATA_DIR, or stop the other one first."""


class NotAWorker(StreamkitError, RuntimeError):
    """A call that needs the app's tables was made where the app runs as Faust's
    client-only or producer-only app (a script that sends to or asks the workers), which
    holds none: read a worker's HTTP view (`GET /tables/<table>/keys/<key>`) instead."""


class StoreUnavailable(StreamkitError):
    """The store is rebalancing or recovering: retry after a short wait."""


class StoreMigrated(StoreUnavailable):
    """This worker no longer owns the partition: rediscover the owner and retry there."""

    def __init__(self, message: str, owner: str | None = None) -> None:
        super().__init__(message)
        self.owner = owner


class BadKey(StreamkitError, ValueError):
    """A key or query parameter in a URL is not of the expected type: answer 400."""


class PeerError(StreamkitError, ConnectionError):
    """Another worker did not answer, or answered with an error (status): retry, or
    answer 503 naming it."""

    def __init__(self, owner: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.owner, self.status = owner, status


# services and the gateway -----------------------------------------------------------
class ServiceError(StreamkitError):
    """Raised by a service handler to answer with this status and error code."""

    def __init__(self, status: int, code: str, message: str = "") -> None:
        super().__init__(message or code)
        if not 400 <= status <= 599:
            raise ValueError(f"a ServiceError status is 4xx or 5xx, not {status}")
        self.status, self.code, self.message = status, code, message or code


class BadRequest(StreamkitError, ValueError):
    """An HTTP request the gateway refuses before sending it on: answer status and code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class ParkedFull(StreamkitError, RuntimeError):
    """Too many requests are parked: answer 503 and let the client retry."""


class GatewayTimeout(StreamkitError, TimeoutError):
    """No reply before the request's deadline: answer 504 with its correlation id."""

    def __init__(self, correlation_id: str) -> None:
        super().__init__(correlation_id)
        self.correlation_id = correlation_id
