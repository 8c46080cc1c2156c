"""crontab: @app.crontab with on_leader=True and with tz=. The workers start with the session
(a crontab fires on the minute) and are checked here."""
import pytest

from .conftest import Pair

MODULE = "tests.compat.programs.crontab"
NS = {"__faust": {"ns": f"{MODULE}.Model"}}


def start_early(pair: Pair) -> None:
    pair.create_topic("cron_topic", 4)
    pair.create_topic("consumed", 4)
    pair.start()


@pytest.mark.early(start=start_early)
def test_crontab(early):
    got = early.settle(lambda run: sorted(run.values("consumed"), key=lambda v: v["cron"]),
                       lambda v: len(v) >= 2, timeout=90, grace=5)
    early.check("records sent by the crontabs, as the agent consumed them", got, [
        {"random": 0.5, "cron": "every minute, US/Pacific", "on_the_minute": True, **NS},
        {"random": 0.25, "cron": "every minute, on the leader", "on_the_minute": True, **NS}])
    early.verdict()
