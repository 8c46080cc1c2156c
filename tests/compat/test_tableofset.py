"""tableofset: SetTable, set.add and set.discard from two agents."""
from collections import defaultdict

from .conftest import js

MODULE = "tests.compat.programs.tableofset"
LOCATIONS = ["paris", "oslo", "lima", "kyiv"]
NAMES = ["ann", "bob", "cai", "dan", "eve", "fay", "gus"]
JOINS = [(LOCATIONS[i % 4], NAMES[i * 3 % 7]) for i in range(40)]
LEAVES = [(LOCATIONS[i % 4], NAMES[i * 5 % 7]) for i in range(0, 40, 3)] + [("oslo", "zed")]


def sets(ops: list[tuple[str, str, str]]) -> dict[str, list[str]]:
    out: dict[str, set] = defaultdict(set)
    for op, key, who in ops:
        if op == "add":
            out[key].add(who)
        else:
            out[key].discard(who)
    return {k: sorted(v) for k, v in out.items()}


def test_tableofset(compat):
    pair = compat(MODULE)
    # Joins first, leaves once every join is in: the two topics have no order between them.
    pair.produce("people_joining2", [(k, js(who)) for k, who in JOINS])
    pair.create_topic("people_leaving2", 4)
    pair.start()
    after_joins = sets([("add", k, w) for k, w in JOINS])
    got = pair.settle(lambda run: run.page("/people/"),
                      lambda v: bool(v) and v["handled"]["join"] >= len(JOINS), timeout=45)
    pair.check("people after the joins", {f: v and v["table"] for f, v in got.items()},
               after_joins)
    pair.produce("people_leaving2", [(k, js(who)) for k, who in LEAVES])
    final = sets([("add", k, w) for k, w in JOINS] + [("discard", k, w) for k, w in LEAVES])
    got = pair.settle(lambda run: run.page("/people/"),
                      lambda v: bool(v) and v["handled"]["leave"] >= len(LEAVES), timeout=30)
    pair.check("people after the leaves", {f: v and v["table"] for f, v in got.items()}, final)
    pair.verdict()
