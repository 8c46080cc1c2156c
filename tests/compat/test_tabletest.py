"""tabletest: stream.events(), sends to explicit partitions, Table + table_route."""
from tests.compat.programs.data import TABLETEST_ITERATIONS as N
from tests.compat.programs.data import TABLETEST_PARTITIONS as P

MODULE = "tests.compat.programs.tabletest"


def test_tabletest(compat):
    pair = compat(MODULE)
    pair.create_topic("countstopic", P)
    pair.start()
    keys = [str(j) for j in range(P)]
    got = pair.settle(lambda run: run.page("/state/"),
                      lambda v: bool(v) and all(v["seen"].get(k) == N - 1 for k in keys))
    pair.check("per partition: last value seen, gaps, partitions the key came from", got,
               {"seen": {k: N - 1 for k in keys}, "gaps": [], "placed": {k: [int(k)] for k in keys}})
    sums = {f: {k: (run.page(f"/count/{k}/") or {}).get(k) for k in keys}
            for f, run in pair.runs.items()}
    pair.check("table_route GET /count/{partition}/", sums, {k: sum(range(N)) for k in keys})
    # What the timer sent: each partition holds its own key's values, in order.
    sent = {f: {p: [(r.key_bytes.decode(), r.value) for r in run.records("countstopic") if r.partition == p]
                for p in range(P)} for f, run in pair.runs.items()}
    pair.check("countstopic per partition", sent,
               {p: [(str(p), i) for i in range(N)] for p in range(P)})
    pair.verdict()
