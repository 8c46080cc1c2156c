"""Operability: metrics, the topology view, the OpenAPI document, authentication."""
