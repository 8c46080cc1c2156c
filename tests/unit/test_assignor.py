import orjson
from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata

from streamkit.processing.assignor import TaskAssignor


class Cluster:
    def __init__(self, topics):
        self.topics = topics

    def partitions_for_topic(self, topic):
        return set(range(self.topics[topic]))


def member(url, active=(), standby=()):
    data = {"url": url, "active": [list(t) for t in active], "standby": [list(t) for t in standby]}
    return ConsumerProtocolMemberMetadata(1, ["a", "b"], orjson.dumps(data))


def make(standbys=0):
    seen = {}
    assignor = TaskAssignor("http://x", lambda: {0: ["a"], 1: ["b"]}, standbys,
                            lambda: (set(), set()), lambda m, a, s: seen.update(map=m, active=a))
    return assignor, seen


def decode(out):
    return {m: orjson.loads(a.user_data) for m, a in out.items()}


def test_tasks_are_balanced_and_copartitioned():
    assignor, _ = make()
    out = assignor.assign(Cluster({"a": 4, "b": 4}), {"m1": member("u1"), "m2": member("u2")})
    users = decode(out)
    assert sorted(len(u["active"]) for u in users.values()) == [4, 4]
    for m, a in out.items():
        mine = {tuple(t) for t in users[m]["active"]}
        topics = dict(a.assignment)
        assert set(topics.get("a", [])) == {p for g, p in mine if g == 0}
        assert set(topics.get("b", [])) == {p for g, p in mine if g == 1}


def test_assignment_is_sticky():
    assignor, _ = make()
    prev = [(0, 0), (0, 3), (1, 1)]
    out = assignor.assign(Cluster({"a": 4, "b": 4}),
                          {"m1": member("u1", active=prev), "m2": member("u2"), "m3": member("u3")})
    assert {tuple(t) for t in decode(out)["m1"]["active"]} >= set(prev)


def test_standbys_never_sit_with_their_active_and_the_map_reaches_every_member():
    assignor, seen = make(standbys=1)
    out = assignor.assign(Cluster({"a": 4, "b": 4}), {"m1": member("u1"), "m2": member("u2")})
    for m, a in out.items():
        user = orjson.loads(a.user_data)
        assert not {tuple(t) for t in user["active"]} & {tuple(t) for t in user["standby"]}
        assert len(user["standby"]) == 4
    assignor.on_assignment(out["m1"])
    cmap = seen["map"]
    assert len(cmap.active) == 8 and set(cmap.active.values()) == {"u1", "u2"}
    assert all(cmap.standby[t] != [cmap.active[t]] for t in cmap.active)
    assert cmap.partitions == {0: 4, 1: 4}


def test_each_sub_topology_is_spread_over_the_members_even_when_one_held_everything():
    assignor, _ = make()
    everything = [(g, p) for g in (0, 1) for p in range(4)]
    out = assignor.assign(Cluster({"a": 4, "b": 4}),
                          {"m1": member("u1", active=everything), "m2": member("u2")})
    for m, user in decode(out).items():
        groups = [g for g, _ in user["active"]]
        assert groups.count(0) == 2 and groups.count(1) == 2, (m, user["active"])


def test_a_new_member_gets_its_share_even_when_the_others_could_keep_everything():
    assignor, _ = make()
    a = [(g, p) for g in (0, 1) for p in (0, 1)]
    b = [(g, p) for g in (0, 1) for p in (2, 3)]
    out = assignor.assign(Cluster({"a": 4, "b": 4}), {"m1": member("u1", active=a),
                                                      "m2": member("u2", active=b),
                                                      "m3": member("u3")})
    users = decode(out)
    assert all(users[m]["active"] for m in ("m1", "m2", "m3"))
    assert sum(len(u["active"]) for u in users.values()) == 8


def test_a_shutdown_request_of_one_member_reaches_every_member_and_no_task_is_given():
    assignor, seen = make()
    asking = orjson.loads(member("u2").user_data)
    asking["shutdown"] = {"by": "u2", "error": "RuntimeError: boom"}
    members = {"m1": member("u1", active=[(0, 0)]),
               "m2": ConsumerProtocolMemberMetadata(1, ["a", "b"], orjson.dumps(asking)),
               "m3": member("u3")}
    out = assignor.assign(Cluster({"a": 4, "b": 4}), members)
    assert set(out) == set(members)
    for a in out.values():
        assert list(a.assignment) == []
        assert orjson.loads(a.user_data)["shutdown"] == {"by": "u2", "error": "RuntimeError: boom"}
    assignor.on_assignment(out["m1"])
    assert seen["map"].shutdown == {"by": "u2", "error": "RuntimeError: boom"}
    assert seen["active"] == set()


def test_a_member_carries_its_shutdown_request_in_its_metadata():
    assignor, _ = make()
    assert "shutdown" not in orjson.loads(assignor.metadata(["a"]).user_data)
    assignor.shutdown = {"by": "http://x", "error": "E"}
    assert orjson.loads(assignor.metadata(["a"]).user_data)["shutdown"] == {"by": "http://x",
                                                                         "error": "E"}
    # Without a request, the map comes back as before.
    assignor.shutdown = None
    plain = make()[0].assign(Cluster({"a": 2, "b": 2}), {"m1": member("u1")})
    assert "shutdown" not in orjson.loads(plain["m1"].user_data)
