"""The service helper's pure parts: replies from handler outcomes, the reply cache, the decorator."""
import faust
import pytest

import streamkit
from streamkit.gateway.envelope import RequestEnvelope
from streamkit.gateway.service import Reply, ReplyCache, ServiceError, build_reply, readdress


def env(cid="p-1", instance="http://127.0.0.1:7001"):
    return RequestEnvelope(id=cid, reply_to="gw-responses", instance=instance, method="POST",
                           path="o-1", trace_id="t-1")


def test_plain_values_become_200_and_none_204():
    ok = build_reply(env(), {"a": 1}, "orders", None)
    assert (ok.id, ok.status, ok.body, ok.error, ok.instance, ok.trace_id) == (
        "p-1", 200, {"a": 1}, None, "http://127.0.0.1:7001", "t-1")
    assert build_reply(env(), None, "orders", None).status == 204


def test_a_reply_naming_an_entity_carries_app_table_and_key_for_wait_for():
    reply = build_reply(env(), Reply(201, {"order_id": "o-1"}, entity="o-1"), "orders", "orders")
    assert reply.status == 201 and reply.body == {"order_id": "o-1"}
    assert reply.entity == {"app": "orders", "table": "orders", "key": "o-1"}
    other = build_reply(env(), Reply(200, None, entity=7, table="baskets"), "shop", "orders")
    assert other.entity == {"app": "shop", "table": "baskets", "key": 7}


def test_service_errors_keep_their_status_and_other_exceptions_are_500_without_details():
    conflict = build_reply(env(), ServiceError(409, "conflict", "taken"), "a", None)
    assert (conflict.status, conflict.error) == (409, {"code": "conflict", "message": "taken"})
    crash = build_reply(env(), KeyError("secret-key-name"), "a", None)
    assert crash.status == 500 and crash.error["code"] == "internal_error"
    assert "secret" not in crash.error["message"] and "KeyError" in crash.error["message"]
    with pytest.raises(ValueError):
        ServiceError(200, "fine")


def test_a_cached_reply_is_readdressed_to_the_retry():
    first = build_reply(env("p-1", "http://a:1"), {"n": 1}, "app", None)
    again = readdress(first, env("p-2", "http://b:2"))
    assert (again.id, again.instance, again.body, again.status) == ("p-2", "http://b:2", {"n": 1}, 200)


def test_reply_cache_is_bounded_and_drops_the_least_recently_used():
    cache = ReplyCache(3)
    replies = {k: build_reply(env(k), k, "a", None) for k in "abcd"}
    for k in "abc":
        cache.put(k, replies[k])
    assert cache.get("a") is replies["a"]  # a is now the most recent
    cache.put("d", replies["d"])
    assert len(cache) == 3
    assert cache.get("b") is None
    assert [cache.get(k).body for k in "acd"] == ["a", "c", "d"]
    empty = ReplyCache(0)
    empty.put("a", replies["a"])
    assert len(empty) == 0


def test_decorator_refuses_sync_handlers_and_a_second_handler_for_one_topic():
    app = faust.App("t-service-decorator", broker="kafka://127.0.0.1:1")
    with pytest.raises(TypeError):
        streamkit.service(app, "t-requests")(lambda req: None)

    @streamkit.service(app, "t-requests")
    async def first(req):
        return None

    with pytest.raises(ValueError):
        @streamkit.service(app, "t-requests")
        async def second(req):
            return None
