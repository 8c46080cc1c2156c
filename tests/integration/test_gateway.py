"""The request-response gateway on the real dev broker: gateway instances and services in
worker processes (services written with the service helper), real HTTP and websockets."""
from __future__ import annotations

import asyncio
import threading
import time

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from rocksdict import Rdict

from streamkit.config import Settings
from streamkit.devbroker import free_port
from streamkit.testing.kafka import create_topic, produce, read_topic
from streamkit.topics import TopicAdmin, TopicSpec

from .conftest import COUNTER, ROOT, metric, metrics_text
from .test_operability import TOKEN
from .test_tables import events, expected, wait_for

ECHO = "tests.integration.apps.gateway_echo"
FRONT = "tests.integration.apps.gateway_front"
ORDERS = "tests.integration.apps.gateway_orders"


class Deployment:
    """One test's services and gateway instances, on topics named after its app id."""

    def __init__(self, broker, app_id, workers, tmp_path, response_partitions=12, replication=1,
                 **gateway_env):
        self.broker, self.app_id, self.workers, self.tmp = broker, app_id, workers, tmp_path
        self.replication = replication
        self.gateway_id = f"{app_id}-gw"
        self.responses = f"{self.gateway_id}-responses"
        self.response_partitions = response_partitions
        self.services = {"echo": f"{app_id}-echo", "counted": f"{app_id}-counted"}
        self.gateway_env = gateway_env
        self.gateways: list = []
        asyncio.run(self._topics())

    async def _topics(self):
        settings = Settings(broker=self.broker, replication_factor=self.replication)
        async with TopicAdmin(settings) as admin:
            await admin.ensure([TopicSpec(self.responses, self.response_partitions)]
                               + [TopicSpec(t, 4) for t in self.services.values()])

    def env(self, name, **extra):
        return {"STREAMKIT_BROKER": self.broker, "STREAMKIT_DATA_DIR": str(self.tmp / f"data-{name}"),
                "STREAMKIT_REPLICATION_FACTOR": str(self.replication),
                "STREAMKIT_WEB_PORT": str(free_port()), "PYTHONPATH": ROOT, **extra}

    def echo_env(self, name="echo", **extra):
        return self.env(name, ECHO_APP_ID=f"{self.app_id}-svc", ECHO_TOPIC=self.services["echo"],
                        COUNTED_TOPIC=self.services["counted"], **extra)

    def start_echo(self, name="echo", **extra):
        w = self.workers(ECHO, self.echo_env(name, **extra), name)
        w.wait_ready()
        wait_for(lambda: w.get("/services/stats")[1]["assigned"])
        return w

    def start_gateway(self, name, **extra):
        services = ",".join(f"{k}={v}" for k, v in self.services.items())
        env = self.env(name, **{"STREAMKIT_GATEWAY_ID": self.gateway_id,
                                "STREAMKIT_GATEWAY_SERVICES": services,
                                "STREAMKIT_REGISTRY_TOPIC": f"{self.app_id}-registry",
                                **self.gateway_env, **extra})
        g = self.workers(FRONT, env, name)
        g.wait_ready()
        self.gateways.append(g)
        return g

    def settled(self, gateways=None):
        """Every instance ready, and the response partitions split among them."""
        gateways = gateways or self.gateways
        owned = []
        for g in gateways:
            status, stats = g.get("/gateway/stats")
            if status != 200 or not stats["ready"] or g.get("/ready")[0] != 200:
                return None
            owned.append(stats["partitions"])
        flat = [p for ps in owned for p in ps]
        return owned if sorted(flat) == list(range(self.response_partitions)) else None

    def stats(self, g):
        status, body = g.get("/gateway/stats")
        assert status == 200, body
        return body


def expected_echo(method, path, query, body):
    return {"method": method, "path": path, "query": query, "body": body,
            "double": body["n"] * 2 if isinstance(body, dict) and "n" in body else None}


async def call(session, url, method="POST", body=None, headers=None, raw=None):
    """(status, decoded body, headers) of one request; (None, error, {}) if the connection failed."""
    data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
    try:
        async with session.request(method, url, data=data, headers=headers) as resp:
            payload = await resp.read()
            return resp.status, orjson.loads(payload) if payload else None, resp.headers.copy()
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        return None, repr(exc), {}


async def stats_of(session, gateway) -> dict:
    """One instance's /gateway/stats, or {} if it does not answer."""
    status, body, _ = await call(session, f"{gateway.url}/gateway/stats", "GET")
    return body if status == 200 else {}


def session(timeout=60, token=None):
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                 timeout=aiohttp.ClientTimeout(total=timeout),
                                 headers={"Authorization": f"Bearer {token}"} if token else None)


def echo_behind_a_gateway(broker, app_id, workers, tmp_path):
    """A deployment of the echo service and one gateway instance, settled."""
    d = Deployment(broker, app_id, workers, tmp_path)
    echo = d.start_echo()
    gw = d.start_gateway("gw0")
    wait_for(lambda: d.settled())
    return d, echo, gw


def test_thousand_concurrent_requests_over_three_instances_are_each_answered_once_correctly(
        broker, app_id, workers, tmp_path):
    d = Deployment(broker, app_id, workers, tmp_path)
    echo = d.start_echo()
    gateways = [d.start_gateway(f"gw{i}") for i in range(3)]
    owned = wait_for(d.settled, timeout=60)
    assert all(owned), owned  # 12 partitions, 3 instances: each owns some
    methods = ["POST", "PUT", "DELETE", "GET"]

    def request(i):
        method = methods[i % 4]
        body = None if method == "GET" else {"n": i}
        return method, f"item-{i % 50}/detail/{i}", {"x": str(i)}, body  # 50 entities

    async def run():
        async with session() as s:
            return await asyncio.gather(*(
                call(s, f"{gateways[i % 3].url}/api/echo/{request(i)[1]}?x={i}", request(i)[0],
                     request(i)[3]) for i in range(1000)))

    results = asyncio.run(run())
    assert len(results) == 1000
    for i, (status, body, headers) in enumerate(results):
        assert status == 200, (i, status, body)
        assert body == expected_echo(*request(i)), (i, body)
        assert headers["X-Streamkit-Parked-By"] == gateways[i % 3].url
        # The id hashed to a partition of the instance that parked it: no hop was needed.
        assert headers["X-Streamkit-Handed-Off"] == "0"
    ids = {h["X-Correlation-Id"] for _, _, h in results}
    assert len(ids) == 1000
    stats = [d.stats(g) for g in gateways]
    assert [s["completed"] for s in stats] == [334, 333, 333]
    assert all(s["parked"] == 0 and s["late"] == 0 and s["timed_out"] == 0 for s in stats)
    assert sum(s["handed_off"] for s in stats) == 0 and sum(s["id_misses"] for s in stats) == 0
    service = echo.get("/services/stats")[1]
    assert (service["requests"], service["handled"], service["replayed"]) == (1000, 1000, 0)


def test_sigkill_of_one_instance_under_load_fails_only_the_requests_parked_on_it(
        broker, app_id, workers, tmp_path):
    d = Deployment(broker, app_id, workers, tmp_path, STREAMKIT_GATEWAY_TIMEOUT_MS="30000")
    d.start_echo()
    gateways = [d.start_gateway(f"gw{i}") for i in range(3)]
    wait_for(d.settled, timeout=60)
    victim, survivors = gateways[2], gateways[:2]
    rate, duration, slow_at = 120, 14.0, 3.0

    async def frames_over_the_rebalance(s, started: asyncio.Event):
        """A websocket on a survivor with slow frames in flight while the victim dies."""
        async with s.ws_connect(f"{survivors[0].url}/ws") as ws:
            await started.wait()
            for k in range(8):
                await ws.send_str(orjson.dumps({"id": k, "service": "echo", "body": {"n": k},
                                                "path": f"ws{k}/sleep/1000"}).decode())
            return [orjson.loads((await ws.receive(timeout=60)).data) for _ in range(8)]

    async def run():
        loop = asyncio.get_running_loop()
        tasks, killed_at = [], None
        async with session(90) as s:
            slow_sent = asyncio.Event()
            ws_task = asyncio.create_task(frames_over_the_rebalance(s, slow_sent))

            def send(tag, g, path, n):
                url = f"{gateways[g].url}/api/echo/{path}"
                task = asyncio.create_task(call(s, url, "POST", {"n": n}))
                tasks.append((tag, g, path, n, task))

            start, i = loop.time(), 0
            while loop.time() - start < duration:
                elapsed = loop.time() - start
                if killed_at is None and elapsed >= slow_at:
                    # Requests that are still parked when the victim dies, on every instance.
                    for k in range(12):
                        send("slow", k % 3, f"s{k}/sleep/1000", 10_000 + k)
                    slow_sent.set()
                    # The victim dies once its four slow requests (a second each) are parked.
                    parked_by = loop.time() + 10
                    while (await stats_of(s, victim)).get("parked", 0) < 4:
                        assert loop.time() < parked_by, "the slow requests were never parked"
                        await asyncio.sleep(0.02)
                    victim.kill()
                    killed_at = loop.time()
                targets = [0, 1, 2] if killed_at is None else [0, 1]
                send("fast", targets[i % len(targets)], f"f{i}", i)
                i += 1
                await asyncio.sleep(1 / rate)
            return ([(tag, g, path, n, await task) for tag, g, path, n, task in tasks],
                    await ws_task)

    results, frames = asyncio.run(run())
    assert sorted(f["id"] for f in frames) == list(range(8))
    assert all(f["status"] == 200 and f["body"] == expected_echo("POST", f"ws{f['id']}/sleep/1000",
                                                                 {}, {"n": f["id"]}) for f in frames)
    on_survivors = [r for r in results if r[1] != 2]
    on_victim = [r for r in results if r[1] == 2]
    for tag, g, path, n, (status, body, headers) in on_survivors:
        assert status == 200, (tag, g, path, status, body)
        assert body == expected_echo("POST", path, {}, {"n": n})
    failed = [r for r in on_victim if r[4][0] != 200]
    slow_on_victim = [r for r in on_victim if r[0] == "slow"]
    # The victim's parked slow requests failed, with a broken connection, not a wrong answer.
    assert slow_on_victim and all(r[4][0] is None for r in slow_on_victim)
    assert all(r[4][0] is None for r in failed)
    assert all(r[4][1] == expected_echo("POST", r[2], {}, {"n": r[3]})
               for r in on_victim if r[4][0] == 200)
    # Replies for requests parked on the survivors that reached the other survivor after
    # their partitions moved were handed over, and answered.
    handed = [r for r in on_survivors if r[4][2].get("X-Streamkit-Handed-Off") == "1"]
    assert handed, "no reply crossed instances: the rebalance moved nothing?"
    owned = wait_for(lambda: d.settled(survivors), timeout=60)
    assert all(owned)
    stats = [d.stats(g) for g in survivors]
    assert sum(s["handoffs_in"] for s in stats) >= len(handed)
    # The victim's slow replies were consumed by a survivor and could not be handed over.
    assert sum(s["handoff_failed"] for s in stats) >= len(slow_on_victim)

    async def after():
        async with session() as s:
            return await asyncio.gather(*(call(s, f"{g.url}/api/echo/after{k}", "POST", {"n": k})
                                          for g in survivors for k in range(50)))

    again = asyncio.run(after())
    assert [r[0] for r in again] == [200] * 100
    assert [r[1]["double"] for r in again] == [2 * k for _ in survivors for k in range(50)]
    assert all(d.stats(g)["parked"] == 0 for g in survivors)


def test_bad_requests_get_json_errors_and_nothing_stays_parked(broker, app_id, workers, tmp_path):
    d = Deployment(broker, app_id, workers, tmp_path, STREAMKIT_GATEWAY_MAX_BODY_BYTES="1000",
                   STREAMKIT_GATEWAY_MAX_PARKED="3")
    echo = d.start_echo()
    g = d.start_gateway("gw")
    wait_for(d.settled)
    api = f"{g.url}/api"

    async def run():
        async with session() as s:
            out = {
                "unknown": await call(s, f"{api}/nope/x"),
                "too_large": await call(s, f"{api}/echo/x", body={"blob": "x" * 2000}),
                "malformed": await call(s, f"{api}/echo/x", raw=b'{"n": '),
                "bad_timeout": await call(s, f"{api}/echo/x", body={},
                                          headers={"X-Timeout-Ms": "soon"}),
                "bad_wait_for": await call(s, f"{api}/echo/x?wait_for=state", body={}),
                "conflict": await call(s, f"{api}/echo/fail", body={}),
                "crash": await call(s, f"{api}/echo/crash", body={}),
                "empty_path": await call(s, f"{api}/echo", "GET"),
                "timeout": await call(s, f"{api}/echo/t1/sleep/1500", body={"n": 1},
                                      headers={"X-Timeout-Ms": "300"}),
                # Behind t1's sleep in its partition: its deadline passes before its turn,
                # so the service does not run it (skip_expired).
                "expired": await call(s, f"{api}/echo/t1", body={"n": 2},
                                      headers={"X-Timeout-Ms": "300"}),
            }
            out["full"] = await asyncio.gather(*(
                call(s, f"{api}/echo/p{k}/sleep/1000", body={"n": k}) for k in range(5)))
            first = await call(s, f"{api}/counted", body={"a": 1}, headers={"Idempotency-Key": "k1"})
            retry = await call(s, f"{api}/counted", body={"a": 1}, headers={"Idempotency-Key": "k1"})
            other = await call(s, f"{api}/counted", body={"a": 2}, headers={"Idempotency-Key": "k2"})
            out["idempotent"] = (first, retry, other)
            return out

    out = asyncio.run(run())

    def err(name, status, code):
        got_status, body, headers = out[name]
        assert got_status == status, (name, got_status, body)
        assert headers["Content-Type"].startswith("application/json")
        assert body["error"]["code"] == code, (name, body)
        assert body["error"]["message"]

    err("unknown", 404, "unknown_service")
    err("too_large", 413, "body_too_large")
    err("malformed", 400, "malformed_json")
    err("bad_timeout", 400, "bad_timeout")
    err("bad_wait_for", 400, "bad_wait_for")
    err("conflict", 409, "conflict")
    err("crash", 500, "internal_error")
    err("timeout", 504, "gateway_timeout")
    err("expired", 504, "gateway_timeout")
    assert out["timeout"][1]["error"]["correlation_id"] == out["timeout"][2]["X-Correlation-Id"]
    assert out["empty_path"][0] == 200 and out["empty_path"][1]["path"] == ""
    full = out["full"]
    assert sorted(r[0] for r in full) == [200, 200, 200, 503, 503]
    assert all(r[1]["error"]["code"] == "too_many_requests" and r[2]["Retry-After"] == "1"
               for r in full if r[0] == 503)
    first, retry, other = out["idempotent"]
    assert first[0] == retry[0] == other[0] == 201
    assert retry[1] == first[1] and other[1]["calls"] == first[1]["calls"] + 1
    assert retry[2]["X-Correlation-Id"] != first[2]["X-Correlation-Id"]
    # The slow reply to the timed-out request arrives after its 504: dropped and counted.
    # The expired request was not run, and sent no reply.
    wait_for(lambda: echo.get("/services/stats")[1]["expired"] == 1)
    stats = wait_for(lambda: (lambda s: s if s["late"] >= 1 else None)(d.stats(g)))
    assert stats["parked"] == 0 and stats["timed_out"] == 2 and stats["rejected_full"] == 2
    assert stats["late"] == 1


def test_replies_reach_an_instance_that_owns_no_partition_over_http_and_websocket(
        broker, app_id, workers, tmp_path):
    # With a token: every route but /health and /ready needs it, and the hand-offs carry it.
    d = Deployment(broker, app_id, workers, tmp_path, response_partitions=1,
                   STREAMKIT_API_TOKEN=TOKEN)
    d.start_echo()
    a, b = d.start_gateway("gw-a"), d.start_gateway("gw-b")
    owned = wait_for(d.settled)
    owner, bare = (a, b) if owned[0] else (b, a)
    assert d.stats(bare)["partitions"] == []

    async def without_the_token():
        routes = [("PUT", "/api/echo/r1"), ("GET", "/gateway/stats"), ("GET", "/apps"),
                  ("GET", "/gateway/workers"), ("GET", "/ui"), ("GET", "/metrics"),
                  ("POST", "/gateway/responses"), ("GET", "/health"), ("GET", "/ready")]
        out = {}
        for token in (None, "wrong"):
            async with session(token=token) as s:
                for method, path in routes:
                    status, body, _ = await call(s, f"{bare.url}{path}", method, {"n": 1})
                    out[(token, path)] = (status, body["error"]["code"] if status == 401 else None)
        return out

    refused = asyncio.run(without_the_token())
    for (token, path), answer in refused.items():
        assert answer == ((200, None) if path in ("/health", "/ready") else (401, "unauthorized")), \
            (token, path, answer)

    async def run():
        async with session(token=TOKEN) as s:
            http = await asyncio.gather(*(call(s, f"{bare.url}/api/echo/h{k}", "PUT", {"n": k})
                                          for k in range(20)))
            frames = {}
            for target in (bare, owner):
                async with s.ws_connect(f"{target.url}/ws") as ws:
                    for k in range(100):
                        await ws.send_str(orjson.dumps({"id": f"f{k}", "service": "echo",
                                                        "method": "POST", "path": f"w{k}",
                                                        "body": {"n": k}}).decode())
                    await ws.send_str(orjson.dumps({"id": "bad", "service": "nope"}).decode())
                    await ws.send_str("{not json")
                    got = [orjson.loads((await ws.receive(timeout=30)).data) for _ in range(102)]
                    frames[target.url] = got
            return http, frames

    http, frames = asyncio.run(run())
    assert [r[0] for r in http] == [200] * 20
    assert [r[1]["double"] for r in http] == [2 * k for k in range(20)]
    assert all(r[2]["X-Streamkit-Handed-Off"] == "1" for r in http)
    for url, got in frames.items():
        by_id = {f["id"]: f for f in got}
        assert len(got) == 102 and len(by_id) == 102, url
        for k in range(100):
            frame = by_id[f"f{k}"]
            assert frame["status"] == 200
            assert frame["body"] == expected_echo("POST", f"w{k}", {}, {"n": k})
        assert by_id["bad"]["status"] == 404
        assert by_id["bad"]["body"]["error"]["code"] == "unknown_service"
        assert by_id[None]["status"] == 400
    bare_stats, owner_stats = d.stats(bare), d.stats(owner)
    assert bare_stats["handoffs_in"] == 120  # 20 HTTP + 100 websocket frames
    assert owner_stats["handed_off"] == 120 and owner_stats["handoff_failed"] == 0
    assert bare_stats["parked"] == 0 and owner_stats["parked"] == 0
    assert bare_stats["ws_connections"] == 1 and bare_stats["ws_open"] == 0


def test_query_routes_follow_registry_records_to_the_owner_of_a_key(
        broker, app_id, workers, tmp_path):
    """The gateway's half of the registry contract: a record in the contract's format,
    published here for two real counter workers, is enough to route their queries."""
    d = Deployment(broker, app_id, workers, tmp_path)
    counter_app = f"{app_id}-counter"
    produce(broker, f"{counter_app}-events", events(500))
    counters = []
    for name in ("counter-a", "counter-b"):
        w = workers(COUNTER, d.env(name, COUNTER_APP_ID=counter_app,
                                   COUNTER_SOURCE=f"{counter_app}-events"), name)
        w.wait_ready()
        counters.append(w)
    want = expected(500)

    def split():
        ready = [w.get("/ready") for w in counters]
        if any(status != 200 or not body["tasks"] for status, body in ready):
            return None
        return {str(p): w.url for w, (_, body) in zip(counters, ready) for _, p in body["tasks"]}

    owners = wait_for(split, timeout=60)
    assert sorted(owners) == ["0", "1", "2", "3"] and len(set(owners.values())) == 2
    wait_for(lambda: all((counters[0].get(f"/tables/totals/keys/{k}")[1] or {}).get("value")
                         == want[k] for k in want))
    g = d.start_gateway("gw", STREAMKIT_QUERY_TIMEOUT_MS="1000")
    # The only host listed is dead: every answer below must come through the owners map.
    dead = f"http://127.0.0.1:{free_port()}"
    record = {"app": counter_app, "hosts": [dead],
              "tables": {"totals": {"partitions": 4, "keys": "str"}},
              "owners": {"totals": owners}, "updated_ms": int(time.time() * 1000)}
    produce(broker, f"{app_id}-registry", [(counter_app, record)])
    wait_for(lambda: g.get(f"/apps/{counter_app}")[0] == 200)

    async def read(keys):
        async with session() as s:
            return [await call(s, f"{g.url}/apps/{counter_app}/tables/totals/keys/{k}", "GET")
                    for k in keys]

    keys = ["k0", "k7", "k13", "k49"]
    for key, (status, body, headers) in zip(keys, asyncio.run(read(keys))):
        assert status == 200 and body["value"] == want[key], (key, body)
        assert headers["X-Streamkit-Served-By"] == owners[str(body["partition"])]
    assert g.get(f"/apps/{counter_app}/tables/totals/keys/absent")[0] == 404
    assert g.get("/apps/unknown-app/tables/totals/keys/k0")[1]["error"]["code"] == "unknown_app"
    assert g.get(f"/apps/{counter_app}/health")[0] == 503  # no live host to ask
    produce(broker, f"{app_id}-registry",
            [(counter_app, {**record, "hosts": [counters[1].url],
                            "updated_ms": record["updated_ms"] + 1})])
    wait_for(lambda: g.get(f"/apps/{counter_app}/health")[0] == 200)
    assert g.get(f"/apps/{counter_app}/health")[1] == {"status": "ok", "app": counter_app}
    assert g.get("/apps")[1]["apps"][counter_app]["hosts"] == [counters[1].url]
    # Scans and counts through the gateway, with their query strings: the one host asked
    # gathers every partition from both workers, page by page, in key order.
    scans, pages, cursor = f"/apps/{counter_app}/tables/totals", [], None
    while cursor is not None or not pages:
        status, page = g.get(scans + "?limit=17" + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200, page
        pages.append(page["items"])
        cursor = page["next"]
    assert [len(p) for p in pages] == [17, 17, 16]
    assert [(it["key"], it["value"]) for p in pages for it in p] == sorted(want.items())
    status, page = g.get(scans + "?prefix=k1&limit=100")
    assert [it["key"] for it in page["items"]] == sorted(k for k in want if k.startswith("k1"))
    assert g.get(scans + "/count")[1]["count"] == len(want) == 50


def test_query_routes_find_workers_from_their_own_registry_records(
        broker, app_id, workers, tmp_path):
    """Needs the registry contract: workers publish themselves to streamkit-registry."""
    d = Deployment(broker, app_id, workers, tmp_path)
    counter_app = f"{app_id}-counter"
    produce(broker, f"{counter_app}-events", events(300))
    counter = workers(COUNTER, d.env("counter", COUNTER_APP_ID=counter_app,
                                     COUNTER_SOURCE=f"{counter_app}-events"), "counter")
    counter.wait_ready()
    g = d.start_gateway("gw", STREAMKIT_REGISTRY_TOPIC="streamkit-registry")
    want = expected(300)

    def read(key):
        status, body = g.get(f"/apps/{counter_app}/tables/totals/keys/{key}")
        return body if status == 200 and body["value"] == want[key] else None

    for key in ("k0", "k13", "k49"):
        assert wait_for(lambda: read(key), timeout=30)["key"] == key


def test_event_driven_route_answers_when_the_order_reaches_a_final_state(
        broker, app_id, workers, tmp_path):
    """The gateway finds the orders worker through streamkit-registry and registers each
    wait there with the workers' `GET /tables/{table}/keys/{key}?wait_for=` route."""
    d = Deployment(broker, app_id, workers, tmp_path)
    orders_app = f"{app_id}-orders"
    d.services = {"orders": f"{orders_app}-requests"}
    asyncio.run(d._topics())
    svc = workers(ORDERS, d.env("orders", ORDERS_APP_ID=orders_app), "orders")
    svc.wait_ready()
    wait_for(lambda: svc.get("/services/stats")[1]["assigned"])
    g = d.start_gateway("gw", STREAMKIT_REGISTRY_TOPIC="streamkit-registry")
    wait_for(lambda: g.get(f"/apps/{orders_app}")[0] == 200)
    url = f"{g.url}/api/orders?wait_for=state:VALIDATED,FAILED"

    async def run():
        async with session() as s:
            http = await asyncio.gather(call(s, url, body={"id": "o-1", "amount": 50}),
                                        call(s, url, body={"id": "o-2", "amount": 500}))
            async with s.ws_connect(f"{g.url}/ws") as ws:
                await ws.send_str(orjson.dumps({"id": 1, "service": "orders", "body": {
                    "id": "o-3", "amount": 7}, "wait_for": "state:VALIDATED,FAILED"}).decode())
                frame = orjson.loads((await ws.receive(timeout=30)).data)
            return http, frame

    (ok, failed), frame = asyncio.run(run())
    assert ok[0] == 200, ok
    assert ok[1] == {"key": "o-1", "value": {"id": "o-1", "amount": 50, "state": "VALIDATED"},
                     "reply": {"order_id": "o-1"}}
    assert failed[0] == 200 and failed[1]["value"]["state"] == "FAILED"
    assert frame["id"] == 1 and frame["status"] == 200
    assert frame["body"]["value"] == {"id": "o-3", "amount": 7, "state": "VALIDATED"}
    stats = d.stats(g)
    # Each wait was registered on the worker and answered when the state was reached (a
    # worker that ignored wait_for would have been polled); a wait longer than one ask's
    # slice is asked again.
    assert stats["waits"] == 3 and stats["wait_requests"] >= 3 and stats["wait_polls"] == 0
    assert stats["parked"] == 0

    # Many requests waiting on one order (held) are all answered with its final state.
    n, many = 20, {}
    held = {"id": "o-many", "amount": 5, "hold": True}

    async def wait_many():
        async with session() as s:
            many["answers"] = await asyncio.gather(*(call(s, url, body=held) for _ in range(n)))

    def settled():
        text = metrics_text(svc)
        # Every request's CREATED and HELD processed (two of each before), every wait parked.
        return (metric(text, "streamkit_records_in_total", topic=f"{orders_app}-orders")
                == 2 * (3 + n) and metric(text, "streamkit_query_waits") == n)

    waiter = threading.Thread(target=lambda: asyncio.run(wait_many()))
    waiter.start()
    try:
        wait_for(settled)
        assert "answers" not in many
        produce(broker, f"{orders_app}-orders", [("o-many", {**held, "state": "VALIDATED"})])
    finally:
        waiter.join(60)
    final = {"key": "o-many", "value": {**held, "state": "VALIDATED"}, "reply": {"order_id": "o-many"}}
    assert [a[:2] for a in many["answers"]] == [(200, final)] * n
    stats = d.stats(g)
    assert stats["waits"] == 3 + n and stats["wait_polls"] == 0 and stats["parked"] == 0


def test_event_driven_wait_survives_its_partition_moving_to_another_worker(
        broker, app_id, workers, tmp_path):
    """The worker holding the wait dies; the wait is registered again on the new owner and
    answered when the order reaches its final state there."""
    d = Deployment(broker, app_id, workers, tmp_path, STREAMKIT_GATEWAY_MAX_TIMEOUT_MS="60000")
    orders_app = f"{app_id}-orders"
    d.services = {"orders": f"{orders_app}-requests"}
    asyncio.run(d._topics())
    first = workers(ORDERS, d.env("orders-a", ORDERS_APP_ID=orders_app), "orders-a")
    first.wait_ready()
    wait_for(lambda: first.get("/services/stats")[1]["assigned"])
    g = d.start_gateway("gw", STREAMKIT_REGISTRY_TOPIC="streamkit-registry")
    wait_for(lambda: g.get(f"/apps/{orders_app}")[0] == 200)
    url = f"{g.url}/api/orders?wait_for=state:VALIDATED,FAILED"
    outcome: dict = {}

    async def wait_for_order():
        async with session(90) as s:
            outcome["answer"] = await call(s, url, body={"id": "o-held", "amount": 5, "hold": True},
                                           headers={"X-Timeout-Ms": "60000"})

    waiter = threading.Thread(target=lambda: asyncio.run(wait_for_order()))
    waiter.start()
    try:
        def held_value():
            value = (first.get("/tables/orders/keys/o-held")[1] or {}).get("value") or {}
            return value if value.get("state") == "HELD" else None

        held = wait_for(held_value)
        wait_for(lambda: d.stats(g)["wait_requests"] >= 1)
        tasks = len(first.tasks())
        second = workers(ORDERS, d.env("orders-b", ORDERS_APP_ID=orders_app), "orders-b")
        second.wait_ready()
        first.kill()
        wait_for(lambda: len(second.tasks()) == tasks, timeout=60)
        assert "answer" not in outcome  # still waiting: HELD is not a final state
        produce(broker, f"{orders_app}-orders", [("o-held", {**held, "state": "VALIDATED"})])
    finally:
        waiter.join(90)
    status, body, _ = outcome["answer"]
    assert status == 200, body
    assert body["key"] == "o-held" and body["value"]["state"] == "VALIDATED"
    assert body["reply"] == {"order_id": "o-held"}
    stats = d.stats(g)
    assert stats["waits"] == 1 and stats["wait_requests"] >= 2 and stats["parked"] == 0


def test_garbage_on_a_request_topic_goes_to_dead_letters_and_the_service_goes_on(
        broker, app_id, workers, tmp_path):
    d, echo, gw = echo_behind_a_gateway(broker, app_id, workers, tmp_path)
    envelope = {"reply_to": d.responses, "instance": gw.url, "method": "GET", "path": "after"}
    garbage = [b"\x00\xff not json", b'{"id": 7}', b"[]", b'{"id": "x", "reply_to": 1}',
               # Envelopes with fields of the wrong type, one with an instance that is no URL.
               orjson.dumps({**envelope, "id": "g1", "deadline_ms": "soon", "instance": 5}),
               orjson.dumps({**envelope, "id": "g2", "request_id": 5}),
               orjson.dumps({**envelope, "id": "g3", "sent_ms": [1]})]
    # Keyed as the request after them is, so that they come first in its partition.
    produce(broker, d.services["echo"], [("after", g) for g in garbage])
    # Replies nobody waits for, one in each response partition: one whose instance is no
    # URL, one whose status is no HTTP status.
    asyncio.run(to_every_partition(broker, d.responses, d.response_partitions, [
        orjson.dumps({"id": "r1", "status": 200, "instance": 5}),
        orjson.dumps({"id": "r2", "status": "ok"})]))

    async def ask():
        async with session() as s:
            return await call(s, f"{gw.url}/api/echo/after", body={"n": 4})

    status, body, _ = asyncio.run(ask())
    assert status == 200 and body["double"] == 8
    assert echo.alive()
    dead = wait_for(lambda: (lambda r: r if len(r) >= len(garbage) else None)(
        read_topic(broker, f"{app_id}-svc-dead-letters")))
    assert sorted(r.value for r in dead) == sorted(garbage)
    assert all(dict(r.headers)["streamkit.stage"] == b"decode" for r in dead)
    # The replies with no HTTP status are counted as bad; the others were read past.
    stats = wait_for(lambda: (lambda st: st if st[1]["replies"] >= 2 * d.response_partitions
                              else None)(gw.get("/gateway/stats")))[1]
    assert stats["bad_replies"] == d.response_partitions


async def to_every_partition(broker, topic, partitions, values):
    producer = AIOKafkaProducer(bootstrap_servers=broker)
    await producer.start()
    try:
        for p in range(partitions):
            for v in values:
                await producer.send_and_wait(topic, v, partition=p)
    finally:
        await producer.stop()


def big_then_small(broker, app_id, workers, tmp_path, size):
    """An echo service and a gateway; the answers to a request for a reply of `size` bytes,
    and to one for 10 bytes after it in the same partition: (status, body) each."""
    d, echo, gw = echo_behind_a_gateway(broker, app_id, workers, tmp_path)

    async def ask():
        async with session() as s:
            return [(await call(s, f"{gw.url}/api/echo/big/big/{n}", "GET"))[:2]
                    for n in (size, 10)]

    big, small = asyncio.run(ask())
    assert small == (200, {"big": "x" * 10})
    assert echo.alive()
    return d, echo, big


def test_a_reply_too_large_to_send_is_answered_with_an_error_and_the_partition_goes_on(
        broker, app_id, workers, tmp_path):
    _, _, (status, body) = big_then_small(broker, app_id, workers, tmp_path, 2_000_000)
    assert status == 502 and body["error"]["code"] == "reply_too_large", (status, body)
    assert "2000" in body["error"]["message"]


def test_a_reply_that_is_not_json_is_answered_with_a_server_error_and_the_partition_goes_on(
        broker, app_id, workers, tmp_path):
    d, echo, gw = echo_behind_a_gateway(broker, app_id, workers, tmp_path)

    async def ask():
        async with session() as s:  # one entity: one partition, in this order
            return [(await call(s, f"{gw.url}/api/echo/{path}", "GET"))[:2]
                    for path in ("unjson", "unjson/after")]

    (status, body), after = asyncio.run(ask())
    assert status == 500 and body["error"]["code"] == "internal_error", (status, body)
    assert "TypeError" in body["error"]["message"]
    assert after[0] == 200 and after[1]["path"] == "unjson/after"
    assert echo.alive()


def test_a_reply_the_response_topic_refuses_is_answered_with_an_error_and_dead_lettered(
        broker, app_id, workers, tmp_path):
    # The gateway's response topic takes records of at most 4 KiB; a 10 kB reply is refused
    # by the broker for good, the short error reply that replaces it is not.
    asyncio.run(create_topic(broker, f"{app_id}-gw-responses", 12,
                             **{"max.message.bytes": "4096"}))
    d, echo, (status, body) = big_then_small(broker, app_id, workers, tmp_path, 10_000)
    assert status == 502 and body["error"]["code"] == "reply_undeliverable", (status, body)
    assert "MessageSizeTooLarge" in body["error"]["message"]
    (dead,) = wait_for(lambda: read_topic(broker, f"{app_id}-svc-dead-letters"))
    headers = dict(dead.headers)
    assert headers["streamkit.stage"] == b"reply"
    assert headers["streamkit.topic"] == d.services["echo"].encode()
    assert orjson.loads(dead.value)["path"] == "big/big/10000"
    assert echo.get("/services/stats")[1]["undeliverable"] == 1


def test_a_request_partition_that_cannot_be_taken_up_stops_the_service_worker(
        broker, app_id, workers, tmp_path):
    # Another process holds the RocksDB store of partition 0's replies: the worker cannot
    # take that partition up. It stops with an error (a supervisor starts it again), rather
    # than run on with the partition paused and its requests unanswered.
    d = Deployment(broker, app_id, workers, tmp_path)
    held = tmp_path / "data-echo" / f"{app_id}-svc" / "service-replies" / d.services["echo"] / "0"
    held.mkdir(parents=True)
    store = Rdict(str(held))
    try:
        w = workers(ECHO, d.echo_env("echo"), "echo")
        with pytest.raises(RuntimeError, match=r"worker exited \((?!0\))"):
            w.wait_ready(timeout=60)
        assert "request partitions" in w.log_tail(200_000)
        assert "not taken up" in w.log_tail(200_000)
    finally:
        store.close()


def test_websocket_limits_refuse_extra_connections_and_oversized_frames(
        broker, app_id, workers, tmp_path):
    d = Deployment(broker, app_id, workers, tmp_path, STREAMKIT_GATEWAY_MAX_WEBSOCKETS="1",
                   STREAMKIT_GATEWAY_MAX_BODY_BYTES="1000")
    d.start_echo()
    gw = d.start_gateway("gw0")
    wait_for(lambda: d.settled())

    async def scenario():
        async with session() as s:
            ws = await s.ws_connect(f"{gw.url}/ws")
            status, body, headers = await call(s, f"{gw.url}/ws", method="GET",
                                               headers={"Upgrade": "websocket", "Connection": "Upgrade",
                                                        "Sec-WebSocket-Version": "13",
                                                        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
            await ws.send_str(orjson.dumps({"id": "big", "service": "echo", "path": "x",
                                            "body": {"pad": "y" * 50_000}}).decode())
            msg = await ws.receive()
            await ws.close()
            return status, body, headers, msg, ws.close_code

    status, body, headers, msg, code = asyncio.run(scenario())
    assert status == 429 and body["error"]["code"] == "too_many_websockets"
    assert headers["Retry-After"] == "1"
    assert code == 1009
    assert d.stats(gw)["ws_refused"] == 1
    wait_for(lambda: d.stats(gw)["ws_too_large"] == 1)


def test_metrics_count_and_time_requests_and_show_parked_timeouts_and_late_replies(
        broker, app_id, workers, tmp_path):
    d = Deployment(broker, app_id, workers, tmp_path)
    d.start_echo()
    g = d.start_gateway("gw")
    wait_for(d.settled)
    api = f"{g.url}/api"

    def value(name, **labels):
        return metric(metrics_text(g), name, app=d.gateway_id, **labels)

    async def run():
        async with session() as s:
            statuses = [(await call(s, f"{api}/echo/a{k}", body={"n": k}))[0] for k in range(3)]
            statuses += [(await call(s, f"{api}/echo/g", "GET"))[0],
                         (await call(s, f"{api}/echo/fail", body={}))[0],
                         (await call(s, f"{api}/nope/x", body={}))[0],
                         (await call(s, f"{api}/echo/x", raw=b'{"n": '))[0],
                         (await call(s, f"{api}/echo/t1/sleep/1500", body={"n": 1},
                                     headers={"X-Timeout-Ms": "300"}))[0]]
            # A request parked for two seconds: the gauge shows it while it waits.
            slow = asyncio.create_task(call(s, f"{api}/echo/s1/sleep/2000", body={"n": 2}))
            loop = asyncio.get_running_loop()
            parked_by, parked = loop.time() + 10, None
            while parked != 1 and not slow.done() and loop.time() < parked_by:
                parked = await loop.run_in_executor(None, lambda: value("streamkit_gateway_parked"))
            statuses.append((await slow)[0])
            async with s.ws_connect(f"{g.url}/ws") as ws:
                await ws.send_str(orjson.dumps({"id": 1, "service": "echo", "body": {"n": 3}}).decode())
                frame = orjson.loads((await ws.receive(timeout=30)).data)
            return statuses, parked, frame["status"]

    statuses, parked_while_slow, frame_status = asyncio.run(run())
    assert statuses == [200, 200, 200, 200, 409, 404, 400, 504, 200] and frame_status == 200
    assert parked_while_slow == 1
    # The reply to the timed-out request comes after its 504: a late reply.
    wait_for(lambda: value("streamkit_gateway_late_replies_total") == 1)
    wait_for(lambda: value("streamkit_gateway_websockets") == 0)
    text = metrics_text(g)

    def requests(service, method, status):
        return metric(text, "streamkit_gateway_requests_total", service=service, method=method,
                      status=str(status))

    assert requests("echo", "POST", 200) == 5      # three, the slow one, the websocket frame
    assert requests("echo", "GET", 200) == 1
    assert requests("echo", "POST", 409) == 1
    assert requests("echo", "POST", 400) == 1
    assert requests("echo", "POST", 504) == 1
    assert requests("(unknown)", "POST", 404) == 1
    # Timed: the eight requests sent to echo (not the one refused before it was sent). The
    # slow one took 2 s or more, the timed-out one its 300 ms deadline or more.
    bucket = lambda le: metric(text, "streamkit_gateway_request_seconds_bucket",  # noqa: E731
                               service="echo", le=le)
    assert bucket("+Inf") == metric(text, "streamkit_gateway_request_seconds_count",
                                    service="echo") == 8
    assert bucket("1.0") <= 7 and bucket("0.25") <= 6
    assert metric(text, "streamkit_gateway_request_seconds_sum", service="echo") >= 2.3
    assert metric(text, "streamkit_gateway_parked", app=d.gateway_id) == 0
    assert metric(text, "streamkit_gateway_timeouts_total", app=d.gateway_id) == 1
    assert metric(text, "streamkit_gateway_websocket_sessions_total", app=d.gateway_id) == 1
    assert metric(text, "streamkit_gateway_handoffs_in_total", app=d.gateway_id) == 0
