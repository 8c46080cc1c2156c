"""The `streamkit` command: `streamkit broker [--port N]` runs the local dev broker."""
from __future__ import annotations

import argparse
import sys
import time

from . import devbroker
from .config import Settings
from .errors import BrokerStartError


def _broker(args: argparse.Namespace) -> int:
    try:
        broker = devbroker.start(port=args.port, host=args.host)
    except BrokerStartError as exc:
        print(f"streamkit broker: {exc}", file=sys.stderr)
        return 1
    print(f"dev broker ready at {broker.url} (pid {broker.pid}); topics live in memory only",
          flush=True)
    from .devrun import stop_on_signals

    stopped = stop_on_signals()
    try:
        while not stopped() and broker.alive():
            time.sleep(0.2)
    finally:
        broker.stop()
    return 0


def _dev(args: argparse.Namespace) -> int:
    from .devrun import run

    return run(args.apps, base_port=args.base_port, gateway=args.gateway,
               gateway_port=args.gateway_port)


def _produce(args: argparse.Namespace) -> int:
    from .testing.kafka import produce

    bootstrap = ",".join(Settings.from_env().bootstrap_servers)
    produce(bootstrap, args.topic, [(args.key, args.value.encode())])
    print(f"sent to {args.topic}: {args.key} -> {args.value}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="streamkit")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("broker", help="run the local dev broker (in-memory Tansu)")
    b.add_argument("--port", type=int, default=9092)
    b.add_argument("--host", default="127.0.0.1")
    b.set_defaults(func=_broker)
    d = sub.add_parser("dev", help="run the dev broker and a worker per app module until Ctrl-C")
    d.add_argument("apps", nargs="+", help="app modules, e.g. apps.customer.app")
    d.add_argument("--base-port", type=int, default=6066)
    d.add_argument("--gateway", help="gateway app module, started last")
    d.add_argument("--gateway-port", type=int, default=8080)
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
