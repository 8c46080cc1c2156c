"""N worker processes of one app, started at once as a user starts them, measured until
their group has committed the end of its input: used by bench/scaling.py (W1) and by the
streamkit-2p cases of bench/stream_join.py and bench/windows.py.

Each process is a case command that runs a worker under the app id it is given and, once
DIR/done exists, prints one JSON line (bench/cases/_common.py's report) and exits. The
driver polls the group's committed offsets every POLL_S; the moment it sees every input
partition's end committed is the end of the measured time. It then waits until the group
is Stable with all its members (with little input the first processes can finish before
the last one joins; what they report is read after the last rebalance), writes DIR/done,
and collects the lines. These admin requests need Apache Kafka: the dev broker's answers
to them are wrong (bench/README.md).
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from pathlib import Path

from common import BenchFailed, tail, with_repo_on_path

POLL_S = 0.05

Ends = dict[tuple[str, int], int]  # (topic, partition) -> end offset


async def poll_admin(bootstrap: str, check, timeout: float) -> float:
    """Call `await check(admin)` every POLL_S with one admin client until it returns true;
    return the time.monotonic() of that call. check raises BenchFailed to give up; after
    `timeout` it is called with admin=None to say what it last saw."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    async def checked() -> bool | str:
        try:
            return await check(admin)
        except KafkaError as exc:
            if exc.retriable:  # e.g. no group coordinator yet on a fresh broker
                return False
            raise

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        deadline = time.monotonic() + timeout
        while not await checked():
            if time.monotonic() > deadline:
                raise BenchFailed(f"after {timeout:.0f}s: {await check(None)}")
            await asyncio.sleep(POLL_S)
        return time.monotonic()
    finally:
        await admin.close()


def wait_committed(bootstrap: str, group: str, ends: Ends, procs: list[subprocess.Popen],
                   timeout: float) -> float:
    """The time.monotonic() at which `group` was seen to have committed every partition's
    end. Fails when a process exits first."""
    got: Ends = {}

    async def check(admin) -> bool | str:
        if admin is None:
            return f"group {group} committed {got}, expected {ends}"
        offsets = await admin.list_consumer_group_offsets(group)
        got.update({(tp.topic, tp.partition): m.offset for tp, m in offsets.items()
                    if (tp.topic, tp.partition) in ends})
        dead = [p.pid for p in procs if p.poll() is not None]
        if dead:
            raise BenchFailed(f"worker process(es) {dead} exited before the end was committed")
        return all(got.get(tp, -1) >= end for tp, end in ends.items())

    return asyncio.run(poll_admin(bootstrap, check, timeout))


def wait_group_formed(bootstrap: str, group: str, members: int, timeout: float) -> None:
    """Wait until `group` is Stable with `members` members."""
    seen: dict = {}

    async def check(admin) -> bool | str:
        if admin is None:
            return f"group {group} is {seen.get('state')} with {len(seen.get('members', []))} members"
        [response] = await admin.describe_consumer_groups([group])
        seen.update(response.to_object()["groups"][0])
        return seen["state"] == "Stable" and len(seen["members"]) == members

    asyncio.run(poll_admin(bootstrap, check, timeout))


def run_group(cmds: list[list[str]], workdir: Path, env: dict[str, str], bootstrap: str,
              group: str, ends: Ends, timeout: float) -> tuple[float, list[dict]]:
    """Start one process per command at once (cwd workdir, stderr to workdir/p<i>.stderr.log),
    wait until `group` committed `ends`, then stop them through workdir/done: (the
    time.monotonic() the ends were seen committed, each process's JSON line)."""
    procs, logs = [], []
    try:
        for i, cmd in enumerate(cmds):
            log = open(workdir / f"p{i}.stderr.log", "wb")
            logs.append(log)
            procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log,
                                          stdin=subprocess.DEVNULL, env=env, cwd=str(workdir)))
        done_at = wait_committed(bootstrap, group, ends, procs, timeout)
        wait_group_formed(bootstrap, group, len(cmds), 120)
        (workdir / "done").touch()
        results = []
        for i, proc in enumerate(procs):
            stderr = workdir / f"p{i}.stderr.log"
            try:
                out, _ = proc.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                raise BenchFailed(f"process {i} did not stop within 120 s of the end; "
                                  f"stderr: {tail(stderr)}") from None
            lines = [ln for ln in out.decode(errors="replace").splitlines() if ln.strip()]
            if proc.returncode != 0 or not lines:
                raise BenchFailed(f"process {i} exit code {proc.returncode}; stderr: {tail(stderr)}")
            try:
                results.append(json.loads(lines[-1]))
            except ValueError:
                raise BenchFailed(f"process {i}'s last line is not JSON: {lines[-1][:200]!r}"
                                  ) from None
        return done_at, results
    finally:
        for proc in procs:  # the processes this driver started, by PID
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()


def run_app_processes(case_cmd: list[str], processes: int, app_id: str, workdir: Path, broker,
                      ends: Ends, timeout: float, events: int) -> tuple[dict, list[dict]]:
    """run_group for `processes` runs of case_cmd, each given `--app-id app_id --index <i>`:
    processes of the streamkit app `app_id` on `broker` (its profile), timed from the first
    record any of them took to the moment the ends were seen committed: (the run's figures
    for `events` input records, each process's JSON line)."""
    env = with_repo_on_path({**os.environ, "STREAMKIT_PROFILE": broker.profile,
                             "PYTHONUNBUFFERED": "1"})
    cmds = [[*case_cmd, "--app-id", app_id, "--index", str(i)] for i in range(processes)]
    done_at, results = run_group(cmds, workdir, env, broker.bootstrap, f"{app_id}-processors",
                                 ends, timeout)
    firsts = [r["first_record_at"] for r in results if r["first_record_at"] is not None]
    if not firsts:
        raise BenchFailed("no process took a record")
    seconds = done_at - min(firsts)
    return {"eps": events / seconds, "seconds": round(seconds, 3),
            "records_per_process": [r["events"] for r in results],
            "commits": [r["commits"] for r in results],
            "cpu_s_total": round(sum(r["cpu_s"] for r in results), 1),
            "rss_mb": max(r["rss_mb"] for r in results),
            "rss_mb_total": round(sum(r["rss_mb"] for r in results), 1),
            "group": results[0]["group"], "processes": processes}, results
