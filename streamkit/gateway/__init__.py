"""The request-response gateway and the service helper (docs/gateway.md)."""
from .factory import GatewayApp, create_gateway
from .service import Reply, ServiceError, ServiceRequest, service
from .settings import GatewaySettings

__all__ = ["create_gateway", "GatewayApp", "GatewaySettings", "service", "ServiceRequest",
           "Reply", "ServiceError"]
