"""W1 ceiling: raw aiokafka consumer + orjson + one rocksdict get/put per event.

No framework, no changelog: this is the per-event RocksDB ceiling that any Python
stateful path on this machine can at best reach. The consumer joins a fresh consumer
group, reads with ``getmany``, decodes each value with orjson and adds ``amount`` to the
per-key sum held in a RocksDB (rocksdict, raw mode: UTF-8 key bytes -> ASCII decimal).
Offsets are committed once, at the end; the clock stops when that commit returns.
"""
from __future__ import annotations

import asyncio
import time
import uuid

import orjson
from _common import compare_sums, fail, load_expected, parse_args, report
from aiokafka import AIOKafkaConsumer
from rocksdict import Options, Rdict


async def run(args) -> None:
    expected = load_expected(args.workdir)
    group = f"w1-ceiling-{uuid.uuid4().hex[:10]}"
    db = Rdict(str(args.workdir / "ceiling.rdb"), Options(raw_mode=True))
    consumer = AIOKafkaConsumer(
        args.topic,
        bootstrap_servers=args.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1500,
    )
    await consumer.start()
    try:
        n = 0
        t0 = None
        loads = orjson.loads
        get = db.get
        while n < args.events:
            batches = await consumer.getmany(timeout_ms=1000)
            if not batches:
                continue
            if t0 is None:
                t0 = time.perf_counter()
            for msgs in batches.values():
                for m in msgs:
                    ev = loads(m.value)
                    k = m.key
                    old = get(k)
                    total = (int(old) if old is not None else 0) + ev["amount"]
                    db[k] = b"%d" % total
                n += len(msgs)
        if n != args.events:
            fail(f"consumed {n} records, expected {args.events}")
        await consumer.commit()
        seconds = time.perf_counter() - t0
    finally:
        await consumer.stop()
    actual = {k.decode(): int(v) for k, v in db.items()}
    db.close()
    problem = compare_sums(actual, expected)
    if problem:
        fail(problem)
    report(args.events, seconds, True, group=group, keys=len(actual))


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
