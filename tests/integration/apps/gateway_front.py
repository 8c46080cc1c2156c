"""A gateway instance for the integration tests: services, topics and limits all come from
STREAMKIT_GATEWAY_* in the environment, so each test runs its own deployment."""
from streamkit.gateway import create_gateway

app = create_gateway()
