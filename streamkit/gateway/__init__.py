"""The request-response gateway (docs/gateway.md)."""
from .factory import GatewayApp, create_gateway
from .settings import GatewaySettings

__all__ = ["create_gateway", "GatewayApp", "GatewaySettings"]
