"""leader: @app.timer(on_leader=True), agent.send, value_serializer='raw'."""
from tests.compat.programs.data import LEADER_GREETINGS

MODULE = "tests.compat.programs.leader"
AGENT_TOPIC = f"{MODULE}.say"


def test_leader(compat):
    pair = compat(MODULE)
    # Faust creates an agent's own topic just before it subscribes; the broker's metadata
    # may not list it yet, and then the agent gets no partitions for minutes. Made here.
    pair.create_topic(AGENT_TOPIC, 4)
    pair.create_topic("said", 4)
    pair.start()
    got = pair.settle(lambda run: sorted(r.value_bytes for r in run.records("said")),
                      lambda v: len(v) >= len(LEADER_GREETINGS))
    # raw: the greeting's own bytes, not a JSON string
    pair.check("greetings passed on (raw bytes, sorted)", got,
               sorted(g.encode() for g in LEADER_GREETINGS))
    pair.check("GET /leader/", {f: run.page("/leader/") for f, run in pair.runs.items()},
               {"is_leader": True, "timer_ran_as_leader": True})
    pair.verdict()
