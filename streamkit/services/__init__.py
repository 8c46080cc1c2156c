"""The service helper: a handler that answers the requests of a topic (docs/gateway.md)."""
from ..errors import ServiceError
from .decorator import service
from .handler import Reply, ServiceRequest

__all__ = ["service", "ServiceRequest", "Reply", "ServiceError"]
