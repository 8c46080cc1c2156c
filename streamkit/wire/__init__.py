"""The request path's Kafka clients: produce and fetch requests made by streamkit over
aiokafka's connections, for the gateway and the services (docs/gateway.md)."""
from .consumer import RequestConsumer
from .producer import RequestProducer

__all__ = ["RequestConsumer", "RequestProducer"]
