"""value_type=dict on a topic: a documented difference (docs/faust.md). Faust 0.15.3 takes
any value_type for a model and calls dict.from_data on every record: each raises
ValueDecodeError and the agent crashes, so nothing is totalled. On streamkit.App dict means
a JSON object, and the agent totals every order."""
from .conftest import js

MODULE = "tests.compat.programs.value_types"
ORDERS = [{"customer": f"c{i % 4}", "amount": i} for i in range(40)]


def test_value_type_dict(compat):
    pair = compat(MODULE)
    pair.produce("orders", [(o["customer"], js(o)) for o in ORDERS])
    pair.start()
    # Faust's agent never gets a value; wait for both to have consumed what they will.
    got = pair.settle(lambda run: run.page("/totals/") if "ValueDecodeError" in
                      run.worker.log_tail(200_000) or (run.page("/totals/") or {}).get(
                          "handled", 0) >= len(ORDERS) else None,
                      lambda v: v is not None, timeout=30, grace=10)
    totals: dict[str, int] = {}
    for o in ORDERS:
        totals[o["customer"]] = totals.get(o["customer"], 0) + o["amount"]
    pair.differs("GET /totals/ (Faust: every order fails to decode)", got,
                 {"handled": 0, "totals": {}}, {"handled": len(ORDERS), "totals": totals})
    pair.verdict()
