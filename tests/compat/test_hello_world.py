"""hello_world: a timer's sends reach an agent, whose sends reach a topic."""
from tests.compat.programs.data import GREETINGS

MODULE = "tests.compat.programs.hello_world"


def test_hello_world(compat):
    pair = compat(MODULE)
    # Faust subscribes when the worker starts and does not create a source topic: one that
    # appears later (the timer declares it) is not picked up for minutes.
    pair.create_topic("greetings", 4)
    pair.create_topic("printed", 4)
    pair.start()
    got = pair.settle(lambda run: sorted(run.values("printed")),
                      lambda v: len(v) >= len(GREETINGS))
    pair.check("printed greetings (sorted)", got, sorted(GREETINGS))
    sent = {f: sorted(run.values("greetings")) for f, run in pair.runs.items()}
    pair.check("the greetings topic (sorted)", sent, sorted(GREETINGS))
    pair.verdict()
