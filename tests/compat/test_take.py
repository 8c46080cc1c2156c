"""stream.take(10, within=1.0) over input that is all there when the worker starts."""
from .conftest import js

MODULE = "tests.compat.programs.take"
NUMBERS = list(range(1, 96))


def test_take(compat):
    pair = compat(MODULE)
    pair.produce("numbers", [(None, js(n)) for n in NUMBERS], partitions=1)
    pair.create_topic("batches", 1)
    pair.start()
    got = pair.settle(lambda run: run.values("batches"),
                      lambda v: sum(len(b["numbers"]) for b in v) >= len(NUMBERS))
    # Full batches of ten, then the rest when `within` runs out.
    want = [NUMBERS[i:i + 10] for i in range(0, len(NUMBERS), 10)]
    pair.check("batches in order", got, [{"numbers": b, "sum": sum(b)} for b in want])
    pair.verdict()
