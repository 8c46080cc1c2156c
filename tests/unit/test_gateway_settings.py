"""Gateway settings from the environment, and the small parsers of the gateway's inputs."""
import orjson
import pytest
from multidict import MultiDict

from streamkit import ConfigError
from streamkit.config import Settings
from streamkit.gateway.correlation import partition_of
from streamkit.gateway.registry import Registry, encode_key
from streamkit.errors import BadRequest
from streamkit.gateway.routes import parse_timeout, query_dict
from streamkit.gateway.settings import GatewaySettings
from streamkit.gateway.waits import WaitFor
from streamkit.serde import resolve


def test_defaults_and_services_from_the_environment():
    gs = GatewaySettings.from_env({"STREAMKIT_GATEWAY_SERVICES": "orders=orders-requests, basket=b-req"})
    assert gs.services == {"orders": "orders-requests", "basket": "b-req"}
    assert gs.responses == "gateway-responses"
    assert (gs.timeout_ms, gs.max_body_bytes, gs.max_parked) == (10_000, 1024 * 1024, 10_000)
    assert gs.fetch_wait_ms == 500  # the default; a worker passes its profile's fetch wait
    assert GatewaySettings.from_env({}, fetch_wait_ms=10).fetch_wait_ms == 10
    assert gs.linger_ms == 2
    assert GatewaySettings.from_env({"STREAMKIT_GATEWAY_LINGER_MS": "0"}).linger_ms == 0


def test_arguments_win_over_the_environment():
    gs = GatewaySettings.from_env({"STREAMKIT_GATEWAY_ID": "g", "STREAMKIT_GATEWAY_SERVICES": "a=b"},
                                  gateway_id="front", services={"x": "y"})
    assert gs.gateway_id == "front" and gs.services == {"x": "y"} and gs.responses == "front-responses"


@pytest.mark.parametrize("env, fragment", [
    ({"STREAMKIT_GATEWAY_SERVICES": "orders"}, "STREAMKIT_GATEWAY_SERVICES"),
    ({"STREAMKIT_GATEWAY_TIMEOUT_MS": "soon"}, "STREAMKIT_GATEWAY_TIMEOUT_MS"),
    ({"STREAMKIT_GATEWAY_MAX_PARKED": "0"}, "max_parked"),
    ({"STREAMKIT_GATEWAY_TIMEOUT_MS": "90000"}, "MAX_TIMEOUT"),
    ({"STREAMKIT_GATEWAY_APPS": "orders="}, "STREAMKIT_GATEWAY_APPS"),
    ({"STREAMKIT_GATEWAY_LINGER_MS": "-1"}, "linger_ms"),
])
def test_bad_values_name_the_variable(env, fragment):
    with pytest.raises(ConfigError, match=fragment):
        GatewaySettings.from_env(env)


def test_wait_for_parses_field_and_values():
    cond = WaitFor.parse("state:VALIDATED,FAILED")
    assert cond == WaitFor("state", ("VALIDATED", "FAILED"))
    assert cond.param() == "state:VALIDATED,FAILED"
    assert cond.matches({"state": "FAILED"}) and not cond.matches({"state": "CREATED"})
    for bad in ("state", "state:", ":A", ""):
        with pytest.raises(ValueError):
            WaitFor.parse(bad)


def test_query_keeps_repeated_names_as_lists_and_drops_gateway_parameters():
    q = MultiDict([("x", "1"), ("y", "a"), ("y", "b"), ("wait_for", "state:A")])
    assert query_dict(q) == {"x": "1", "y": ["a", "b"]}


def test_timeout_header_is_bounded_and_validated():
    assert parse_timeout(None, 100) is None
    assert parse_timeout("50", 100) == 50 and parse_timeout("500", 100) == 100
    for bad in ("0", "-5", "soon"):
        with pytest.raises(BadRequest):
            parse_timeout(bad, 100)


def test_registry_routes_a_key_to_the_owner_of_its_partition():
    reg = Registry(Settings(), "streamkit-registry", {"static": ("http://s:1",)})
    owners = {str(p): f"http://w{p % 2}:1" for p in range(4)}
    record = {"app": "shop", "hosts": ["http://w0:1", "http://w1:1"],
              "tables": {"spend": {"partitions": 4, "keys": "str"},
                         "ids": {"partitions": 4, "keys": "int"}},
              "owners": {"spend": owners, "ids": owners}, "updated_ms": 2}
    reg.apply(b"shop", orjson.dumps(record))
    for key in ("c1", "c2", "c3", "zz"):
        assert reg.owner("shop", "spend", key) == owners[str(partition_of(key.encode(), 4))]
    int_bytes = resolve("int").encode(42)
    assert encode_key("int", "42") == int_bytes
    assert reg.owner("shop", "ids", "42") == owners[str(partition_of(int_bytes, 4))]
    assert reg.owner("shop", "nope", "c1") is None
    assert sorted(reg.hosts("shop")) == ["http://w0:1", "http://w1:1"]
    assert reg.hosts("static") == ["http://s:1"] and reg.known("static")
    older = dict(record, hosts=["http://old:1"], updated_ms=1)
    reg.apply(b"shop", orjson.dumps(older))  # out of order: ignored
    assert "http://old:1" not in reg.hosts("shop")
    reg.apply(b"shop", None)
    assert not reg.known("shop")


def test_a_gateway_without_services_refuses_to_start():
    from streamkit.gateway import create_gateway

    with pytest.raises(ConfigError, match="service"):
        create_gateway("g", env={})
