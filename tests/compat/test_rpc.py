"""advanced/rpc: agents that yield, agent.ask (also from inside an agent), join and map."""
from tests.compat.programs.data import RPC_ASK, RPC_VALUES

MODULE = "tests.compat.programs.rpc"


def test_rpc(compat):
    pair = compat(MODULE)
    pair.create_topic("RPC__pow", 4)
    pair.create_topic("RPC__mul", 4)
    pair.start()
    got = pair.settle(lambda run: run.page("/results/"), lambda v: bool(v) and "ask" in v)
    results = {f: v and {**v, "map": sorted(v.get("map") or [])} for f, v in got.items()}
    pair.check("join (in order), map (sorted), ask", results, {
        "started": True,
        "join": [(v ** 2) * 100.0 for v in RPC_VALUES],
        "map": sorted((v ** 2) * 100.0 for v in RPC_VALUES),
        "ask": [x * 100.0 for x in RPC_ASK]})
    pair.verdict()
