"""An app with no agent and no table: a stream iterated in a task, a leader-only timer.
Faust subscribes to a stream made at run time 45 s later (its conductor waits that long for
more changes before it resubscribes), so the workers start with the session."""
import pytest

from tests.compat.programs.data import LEADER_GREETINGS

from .conftest import Pair, js

MODULE = "tests.compat.programs.manual_stream"
NUMBERS = list(range(50))


def start_early(pair: Pair) -> None:
    # The numbers come in the test, long after the workers subscribed: records already in
    # the topic when Faust resubscribes can be lost to Faust's own race (faust-streaming
    # #596, tests/compat/README.md), on either flavor.
    pair.create_topic("numbers", 4)
    pair.create_topic("doubled", 4)
    pair.create_topic("announced", 4)
    pair.start()


@pytest.mark.early(start=start_early)
def test_manual_stream(early):
    pair = early
    pair.produce("numbers", [(None, js(n)) for n in NUMBERS])
    got = pair.settle(lambda run: sorted(run.values("doubled")),
                      lambda v: len(v) >= len(NUMBERS), timeout=90, grace=5)
    pair.check("app.stream(topic) in a task: numbers doubled (sorted)", got,
               sorted(2 * n for n in NUMBERS))
    got = pair.settle(lambda run: sorted(run.values("announced")),
                      lambda v: len(v) >= len(LEADER_GREETINGS), timeout=20, grace=5)
    pair.check("@app.timer(on_leader=True) sends (sorted)", got, sorted(LEADER_GREETINGS))
    pair.verdict()
