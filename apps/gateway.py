"""The deployment's gateway: /api/{customer,basket,orders}/... to the services, plus the
query routes of every app. Listens on STREAMKIT_WEB_PORT (8080 with `make run`)."""
from apps.common import names
from streamkit.gateway import create_gateway

N = names()
app = create_gateway(N.gateway_app, services=N.services())
