"""Guarded routes over a real aiohttp server on loopback: limits, JSON errors, 404/405."""
from collections import Counter
from types import SimpleNamespace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from streamkit.http import error, json_response
from streamkit.routing import Routes

LIMITS = SimpleNamespace(max_url_bytes=200, max_header_bytes=600)


@pytest.fixture
async def served():
    """(client, breaches) of a guarded app on loopback; closed after the test."""
    breaches = Counter()
    client = await client_for(breaches)
    yield client, breaches
    await client.close()


async def client_for(breaches: Counter) -> TestClient:
    web_app = web.Application(client_max_size=100)
    routes = Routes(web_app, LIMITS, breaches)

    async def echo(request: web.Request) -> web.Response:
        return json_response({"got": (await request.read()).decode(), "id": request.match_info["id"]})

    async def teapot(request: web.Request) -> web.Response:
        raise web.HTTPConflict(text='{"error": {"code": "own"}}', content_type="application/json")

    async def plain(request: web.Request) -> web.Response:
        raise web.HTTPTooManyRequests(headers={"Retry-After": "3"})

    routes.post("/echo/{id}", echo)
    routes.get("/items/{id}", _item)
    routes.get("/teapot", teapot)
    routes.get("/plain", plain)
    routes.add_fallback()
    client = TestClient(TestServer(web_app, host="127.0.0.1"))
    await client.start_server()
    return client


async def _item(request: web.Request) -> web.Response:
    if request.match_info["id"] == "x":
        return error(404, "unknown_key", "no x")
    return json_response({"id": request.match_info["id"]})


async def test_handlers_answer_and_head_is_served(served):
    client, _ = served
    r = await client.get("/items/7")
    assert (r.status, await r.json()) == (200, {"id": "7"})
    r = await client.head("/items/7")
    assert r.status == 200
    r = await client.post("/echo/1", data=b"hello")
    assert await r.json() == {"got": "hello", "id": "1"}


async def test_limits_are_json_errors_and_counted(served):
    client, breaches = served
    r = await client.get("/items/" + "k" * 300)
    assert (r.status, (await r.json())["error"]["code"]) == (414, "uri_too_long")
    r = await client.get("/items/1", headers={"X-Big": "v" * 700})
    assert (r.status, (await r.json())["error"]["code"]) == (431, "headers_too_large")
    r = await client.post("/echo/1", data=b"b" * 500)
    assert (r.status, (await r.json())["error"]["code"]) == (413, "body_too_large")
    assert breaches == Counter(url=1, headers=1, body=1)


async def test_unknown_paths_and_methods_are_json_404_and_405(served):
    client, _ = served
    for path in ("/nowhere/at/all", "/items/a%0Ab/c", "/%0A"):
        r = await client.get(path)
        assert (r.status, (await r.json())["error"]["code"]) == (404, "not_found"), path
    r = await client.delete("/items/7")
    assert (r.status, (await r.json())["error"]["code"]) == (405, "method_not_allowed")
    assert r.headers["Allow"] == "GET,HEAD"
    r = await client.get("/echo/1")
    assert (r.status, r.headers["Allow"]) == (405, "POST")


async def test_http_exceptions_become_json_unless_they_are_json_already(served):
    client, _ = served
    r = await client.get("/teapot")
    assert (r.status, await r.json()) == (409, {"error": {"code": "own"}})
    r = await client.get("/plain")
    body = await r.json()
    assert (r.status, body["error"]["code"], r.headers["Retry-After"]) == (429, "http_error", "3")
