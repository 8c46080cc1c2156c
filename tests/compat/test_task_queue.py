"""task_queue: a Record with a method and a property, sent to an agent with agent.send."""
from tests.compat.programs.data import TASKS

from .conftest import canon

MODULE = "tests.compat.programs.task_queue"
AGENT_TOPIC = f"{MODULE}.process_task"


def test_task_queue(compat):
    pair = compat(MODULE)
    # Faust creates an agent's own topic just before it subscribes; the broker's metadata
    # may not list it yet, and then the agent gets no partitions for minutes. Made here.
    pair.create_topic(AGENT_TOPIC, 4)
    pair.create_topic("results", 4)
    pair.start()
    got = pair.settle(lambda run: canon((r.key_bytes, r.value) for r in run.records("results")),
                      lambda v: len(v) >= len(TASKS))
    pair.check("results (key bytes, value)", got,
               canon((id.encode(), {"id": id, "result": x + y + z}) for id, x, y, z in TASKS))
    # The requests as they went over the agent's topic: Faust's JSON of the Record.
    sent = {f: canon(run.values(AGENT_TOPIC)) for f, run in pair.runs.items()}
    pair.check("requests on the agent's topic", sent, canon(
        {"id": id, "name": f"{MODULE}.add", "arguments": [x, y],
         "keyword_arguments": {"z": z} if z else {}, "__faust": {"ns": f"{MODULE}.Request"}}
        for id, x, y, z in TASKS))
    pair.verdict()
