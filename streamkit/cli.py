"""The `streamkit` command: `streamkit broker [--port N]` runs the local dev broker;
`streamkit kafka [--nodes 1|3]` runs Apache Kafka (KRaft) on loopback."""
from __future__ import annotations

import argparse
import asyncio
import sys
import time

from . import devbroker, kafkabroker
from .clients import Clients
from .config import Settings
from .devrun import run, stop_on_signals
from .errors import BrokerStartError


def _broker(args: argparse.Namespace) -> int:
    try:
        broker = devbroker.start(port=args.port, host=args.host)
    except BrokerStartError as exc:
        print(f"streamkit broker: {exc}", file=sys.stderr)
        return 1
    print(f"dev broker ready at {broker.url} (pid {broker.pid}); topics live in memory only; "
          f"run workers with STREAMKIT_BROKER={broker.url} STREAMKIT_PROFILE=devbroker",
          flush=True)
    stopped = stop_on_signals()
    try:
        while not stopped() and broker.alive():
            time.sleep(0.2)
    finally:
        broker.stop()
    return 0


def _kafka(args: argparse.Namespace) -> int:
    def say(message: str) -> None:
        print(f"streamkit kafka: {message}", flush=True)

    # Catch Ctrl-C/SIGTERM before any JVM runs, so that every one started is stopped by PID.
    stopped = stop_on_signals()
    try:
        cluster = kafkabroker.start_kafka(nodes=args.nodes, port=args.port, data_dir=args.data,
                                          version=args.version, heap_mb=args.heap_mb,
                                          on_download=say)
    except BrokerStartError as exc:
        print(f"streamkit kafka: {exc}", file=sys.stderr)
        return 1
    n = len(cluster.nodes)
    print(f"Apache Kafka {cluster.version} ready at {cluster.bootstrap} "
          f"({n} node{'s' if n > 1 else ''}, KRaft, pids {','.join(map(str, cluster.pids))}, "
          f"heap {cluster.heap_mb} MB each); "
          f"STREAMKIT_BROKER={cluster.url}", flush=True)
    kept = "kept" if args.data else "removed at exit"
    print(f"data in {cluster.data_dir} ({kept}); logs: "
          + " ".join(str(x.log_path) for x in cluster.nodes), flush=True)
    code = 0
    try:
        while not stopped():
            dead = [x for x in cluster.nodes if not x.alive()]
            if dead:
                for x in dead:
                    print(f"streamkit kafka: node {x.node_id} exited; see {x.log_path}",
                          file=sys.stderr)
                code = 1
                break
            time.sleep(0.2)
    finally:
        cluster.stop()
    return code


def _dev(args: argparse.Namespace) -> int:
    return run(args.apps, base_port=args.base_port, gateway=args.gateway,
               gateway_port=args.gateway_port, state_dir=args.state_dir,
               broker_kind=args.broker, broker_port=args.broker_port)


def _produce(args: argparse.Namespace) -> int:
    async def send() -> None:
        producer = Clients(Settings.from_env()).producer()
        await producer.start()
        try:
            await producer.send_and_wait(args.topic, args.value.encode(), key=args.key.encode())
        finally:
            await producer.stop()

    asyncio.run(send())
    print(f"sent to {args.topic}: {args.key} -> {args.value}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="streamkit")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("broker", help="run the local dev broker (in-memory Tansu)")
    b.add_argument("--port", type=int, default=9092)
    b.add_argument("--host", default="127.0.0.1")
    b.set_defaults(func=_broker)
    k = sub.add_parser("kafka", help="run Apache Kafka (KRaft) on 127.0.0.1 until Ctrl-C; "
                       "the jars come from Maven Central once (needs Java 17+, and Maven once)")
    k.add_argument("--nodes", type=int, choices=(1, 3), default=1,
                   help="combined broker+controller nodes; 3 gives replication factor 3, "
                   "min.insync.replicas 2")
    k.add_argument("--port", type=int, help="client port of the first node; the others use "
                   "the next ports (default: free ports)")
    k.add_argument("--data", help="data directory, kept after exit (default: a temporary one, "
                   "removed at exit)")
    k.add_argument("--version", default=kafkabroker.DEFAULT_VERSION,
                   help="Apache Kafka version (default %(default)s)")
    k.add_argument("--heap-mb", type=int, default=kafkabroker.DEFAULT_HEAP_MB,
                   help="JVM heap of each node in MB (default %(default)s)")
    k.set_defaults(func=_kafka)
    d = sub.add_parser("dev", help="run a broker and a worker per app module (restarted if it "
                                   "exits) until Ctrl-C")
    d.add_argument("apps", nargs="+", help="app modules, e.g. apps.customer.app")
    d.add_argument("--base-port", type=int, default=6066)
    d.add_argument("--gateway", help="gateway app module, started last")
    d.add_argument("--gateway-port", type=int, default=8080)
    d.add_argument("--state-dir", default=".run", help="logs and RocksDB files (default .run)")
    d.add_argument("--broker", choices=("auto", "kafka", "dev"), default="auto",
                   help="auto (default): Apache Kafka where Java 17+ is installed, else the "
                        "dev broker; ignored when STREAMKIT_BROKER is set")
    d.add_argument("--broker-port", type=int, default=9092)
    d.set_defaults(func=_dev)
    p = sub.add_parser("produce", help="send one record (key, JSON value) to a topic")
    p.add_argument("topic")
    p.add_argument("key")
    p.add_argument("value")
    p.set_defaults(func=_produce)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
