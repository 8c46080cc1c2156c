"""GlobalTable written by an agent: last value per key wins, None deletes, default=str; and
the partitions of the changelog topic Faust creates when the app sets no topic_partitions."""
import asyncio

from streamkit.testing.kafka import admin_client

from .conftest import js

MODULE = "tests.compat.programs.global_table"
KEYS = [f"k{i}" for i in range(9)]
WRITES = [(KEYS[i * 4 % 9], None if i % 7 == 6 else f"v{i}") for i in range(60)]
FAUST_DEFAULT_PARTITIONS = 8   # faust.App's topic_partitions when not given (Faust's docs)


async def partitions_of(bootstrap: str, topic: str) -> int | None:
    async with admin_client(bootstrap) as admin:
        (d,) = await admin.describe_topics([topic])
    return len(d["partitions"]) if d["error_code"] == 0 else None


def test_global_table(compat, broker):
    want: dict = {}
    for k, v in WRITES:   # one key's writes stay in order: they go to one partition
        if v is None:
            want.pop(k, None)
        else:
            want[k] = v
    pair = compat(MODULE)
    # The input has as many partitions as the changelog Faust makes by default: Faust checks
    # that a table's source topic and changelog have the same count.
    pair.produce("settings", [(k, js(v)) for k, v in WRITES],
                 partitions=FAUST_DEFAULT_PARTITIONS)
    pair.start()
    got = pair.settle(lambda run: run.page("/settings/"),
                      lambda v: bool(v) and v["handled"] >= len(WRITES), grace=8)
    pair.check("GET /settings/ (handled, settings, missing key)",
               {f: v and {k: v[k] for k in ("handled", "settings", "missing")}
                for f, v in got.items()},
               {"handled": len(WRITES), "settings": want, "missing": ""})
    pair.check("app.conf.topic_partitions when the app sets none",
               {f: v and v["topic_partitions"] for f, v in got.items()}, FAUST_DEFAULT_PARTITIONS)
    changelog = {f: asyncio.run(partitions_of(broker, f"{run.app_id}-settings-changelog"))
                 for f, run in pair.runs.items()}
    pair.check("partitions of the changelog topic the app created", changelog,
               FAUST_DEFAULT_PARTITIONS)
    pair.verdict()
