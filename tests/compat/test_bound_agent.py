"""bound_agent: channels, app.agent(channel, name=..., sink=[...])(partial(fn, ...)), a
timer made with app.timer(...)(partial(...)), and a Record nested in a Record."""
from tests.compat.programs.data import DEVICES

from .conftest import canon

MODULE = "tests.compat.programs.bound_agent"
ACTION = {"__faust": {"ns": f"{MODULE}.DeviceAction"}}
DEAD = {"__faust": {"ns": f"{MODULE}.DeadLetter"}}


def oracle():
    processed, dead = [], []
    for i in range(DEVICES):
        action = {"device_id": str(i), **ACTION}
        if i % 3 == 0:
            dead.append({"stage": "stage1", "record": action, **DEAD})
        elif i % 5 == 1:
            dead.append({"stage": "stage2", "record": action, **DEAD})
        else:
            processed.append(action)
    return canon(processed), canon(dead)


def test_bound_agent(compat):
    processed, dead = oracle()
    pair = compat(MODULE)
    pair.create_topic("processed", 4)
    pair.create_topic("dead-letters", 4)
    pair.start()
    got = pair.settle(lambda run: canon(run.values("processed")),
                      lambda v: len(v) >= len(processed))
    pair.check("what stage2 yields, through sink=[topic] (JSON, sorted)", got, processed)
    # A nested Record is written as Faust writes every Record: with its "__faust" namespace.
    got = pair.settle(lambda run: canon(run.values("dead-letters")),
                      lambda v: len(v) >= len(dead))
    pair.check("dead letters (a Record holding a Record; JSON, sorted)", got, dead)
    pair.verdict()
