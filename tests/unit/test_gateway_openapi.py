"""Every route a gateway (and a service app) serves is in its OpenAPI document."""
from aiohttp import web

import streamkit
from streamkit import Settings
from streamkit.gateway import create_gateway
from streamkit.services.runner import runner_for
from streamkit.ops.openapi import document


def routes_and_doc(app):
    """The routes the app installs (with its parts'), against its OpenAPI document; the
    JSON 404/405 catch-all is not an operation."""
    web_app = web.Application()
    app.install_routes(web_app)
    served = {(r.method, r.resource.canonical) for r in web_app.router.routes()
              if r.method not in ("HEAD", "*")}
    doc = document(extra_paths=app.openapi_paths())
    documented = {(m.upper(), path) for path, ops in doc["paths"].items() for m in ops}
    return served, documented, doc


def test_every_gateway_route_is_documented_with_json_errors():
    app = create_gateway("g", {"orders": "orders-requests"}, settings=Settings.from_env({}))
    served, documented, doc = routes_and_doc(app)
    assert ("POST", "/api/{service}/{path}") in served and ("GET", "/ws") in served
    assert served == documented
    for path, ops in doc["paths"].items():
        for op in ops.values():
            for status, resp in op["responses"].items():
                if status.startswith(("4", "5")):
                    assert resp["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/Error"}, (path, status)


def test_the_service_helper_documents_its_stats_route():
    app = streamkit.App("svc-doc", settings=Settings.from_env({}))

    @streamkit.service(app, "svc-doc-requests")
    async def handle(req):
        return None

    runner_for(app)
    served, documented, _ = routes_and_doc(app)
    assert ("GET", "/services/stats") in served
    assert served == documented
