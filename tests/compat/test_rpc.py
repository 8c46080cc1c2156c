"""advanced/rpc: agents that yield, agent.ask (also from inside an agent), join and map;
and agent.ask from a process of its own beside the worker, as a script or a command calls
it (Faust then starts the app client-only)."""
import json
import subprocess
import sys

from streamkit.devbroker import free_port
from tests.compat.conftest import ROOT
from tests.compat.programs.data import RPC_ASK, RPC_VALUES

MODULE = "tests.compat.programs.rpc"


def test_rpc(compat):
    pair = compat(MODULE)
    pair.create_topic("RPC__pow", 4)
    pair.create_topic("RPC__mul", 4)
    pair.start()
    got = pair.settle(lambda run: run.page("/results/"), lambda v: bool(v) and "ask" in v)
    results = {f: v and {**v, "map": sorted(v.get("map") or [])} for f, v in got.items()}
    pair.check("join (in order), map (sorted), ask", results, {
        "started": True,
        "join": [(v ** 2) * 100.0 for v in RPC_VALUES],
        "map": sorted((v ** 2) * 100.0 for v in RPC_VALUES),
        "ask": [x * 100.0 for x in RPC_ASK]})
    pair.check("ask from a client process", {
        flavor: ask_from_a_client(run.worker.env, RPC_ASK) for flavor, run in pair.runs.items()},
        [x * 100.0 for x in RPC_ASK])
    pair.verdict()


# The process ends itself once it has printed: Faust's stop of a client-only app waits for
# its reply consumer's records to be acknowledged, which nothing does (faust.App and
# streamkit.App alike).
CLIENT = """
import json, os, sys
from tests.compat.programs.rpc import app, mul

async def main():
    replies = [await mul.ask(float(x)) for x in json.loads(sys.argv[1])]
    print(json.dumps(replies), flush=True)
    os._exit(0)

app.loop.run_until_complete(main())
"""


def ask_from_a_client(worker_env: dict, values: list) -> object:
    """What mul.ask gave a process of its own (the worker's program and environment, its own
    web port), one value after the other; its output's last line, or the failure."""
    env = {**worker_env, "STREAMKIT_WEB_PORT": str(free_port()), "PYTHONPATH": ROOT}
    try:
        done = subprocess.run([sys.executable, "-c", CLIENT, json.dumps(values)], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired as exc:
        return f"<no answer in 90 s: {str(exc.stderr)[-1500:]}>"
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return f"<exit {done.returncode}: {done.stderr[-1500:]}>"
    return json.loads(lines[-1])
