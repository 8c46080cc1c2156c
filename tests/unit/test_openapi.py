from aiohttp import web

import streamkit
from streamkit import Settings
from streamkit.ops.openapi import document


def test_every_route_a_worker_serves_is_in_the_openapi_document():
    app = streamkit.App("doc", settings=Settings.from_env({}))
    app.source("x").group_by_key().count("n")
    web_app = web.Application()
    app.install_routes(web_app)
    served = {(r.method, r.resource.canonical) for r in web_app.router.routes()
              if r.method not in ("HEAD", "*")}
    doc = document(extra_paths=app.openapi_paths())
    documented = {(m.upper(), path) for path, ops in doc["paths"].items() for m in ops}
    assert served == documented


def test_security_is_documented_only_with_a_token_and_tables_are_enumerated():
    open_doc = document(tables=["orders"])
    assert "security" not in open_doc and "401" not in open_doc["paths"]["/tables"]["get"]["responses"]
    secured = document(tables=["orders"], secured=True)
    assert secured["security"] == [{"bearer": []}]
    assert secured["paths"]["/health"]["get"]["security"] == []
    [param] = [p for p in secured["paths"]["/tables/{table}"]["get"]["parameters"] if p["name"] == "table"]
    assert param["schema"]["enum"] == ["orders"]


def test_every_documented_operation_has_its_error_shape():
    doc = document(secured=True)
    for path, ops in doc["paths"].items():
        for op in ops.values():
            for status, resp in op["responses"].items():
                if status.startswith(("4", "5")):
                    schema = resp["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (path, status)
