"""The foreign-key table-table join: the left value names the right key.

The two tables are partitioned by different keys, so (as in Kafka Streams) the join talks
through two internal topics:

    left change (lk, lv) --subscription topic, key fk(lv)--> right side: remembers who
        subscribed to fk, answers with the right value
    right change (rk, rv) --> every left key subscribed to rk gets the new right value
    answer --response topic, key lk--> left side: result[lk] = joiner(left[lk], rv),
        unless left[lk] has changed since it asked (a stale answer: the answer to its
        latest value is on its way)

Each subscription carries a digest of the left value that made it, the right side keeps
it and sends it back with every answer, and the left side drops an answer whose digest
is not its current value's (as Kafka Streams does): an answer to an older value would
repeat the result of the newer one.

A change of the foreign key unsubscribes the old one, so the old right value can no longer
reach the result. Everything is in changelogged stores, so the join survives restarts.
"""
from __future__ import annotations

import hashlib
from typing import Any, Callable

import orjson

from ..processing.builder import Position
from ..processing.nodes import Node, SinkNode, SourceNode
from ..processing.topology import InternalTopic, TableSpec
from ..serde import resolve
from .nodes import check_how


def _digest(encode: Callable[[Any], bytes], left_value: Any) -> str:
    """A digest of the left value as its table stores it (its serde's bytes)."""
    return hashlib.blake2b(encode(left_value), digest_size=8).hexdigest()


def _sub_key(fk: Any, lk: Any) -> tuple:
    return (fk, lk)  # stored as the JSON array [fk, lk]


def _sub_prefix(fk: Any) -> bytes:
    # JSON of [fk, lk] begins with the JSON of [fk] minus its "]" and then ",".
    return orjson.dumps([fk])[:-1] + b","


class _WritesAside(Node):
    """An operator that also writes to an internal topic through a sink of its own."""

    __slots__ = ()
    sink: SinkNode

    def successors(self) -> list[Node]:
        return [*self.children, self.sink]


class SubscribeNode(_WritesAside):
    """Left side: a left change becomes (un)subscriptions keyed by the foreign key."""

    __slots__ = ("fk", "fks", "sink", "result", "joiner", "left_outer", "encode")

    def __init__(self, name: str, fk: Callable[[Any], Any], sink: SinkNode, result: str,
                 joiner: Callable[[Any, Any], Any], left_outer: bool,
                 encode: Callable[[Any], bytes]) -> None:
        super().__init__(f"fk-subscribe:{name}")
        self.fk, self.fks, self.sink = fk, f"{name}-fk", sink
        self.result, self.joiner, self.left_outer = result, joiner, left_outer
        self.encode = encode  # the left table's values

    def process(self, key, value, ts):
        stores = self.ctx.task.stores
        new_fk = None if value is None else self.fk(value)
        old_fk = stores[self.fks].get(key)
        if old_fk is not None and old_fk != new_fk:
            self.sink.process(old_fk, {"lk": key, "op": "unsub"}, ts)
        if new_fk is not None:
            self.sink.process(new_fk, {"lk": key, "op": "sub", "h": _digest(self.encode, value)}, ts)
        stores[self.fks].put(key, new_fk)
        if value is None or new_fk is None:
            # No foreign key: nothing will answer, so the result is settled here.
            joined = self.joiner(value, None) if value is not None and self.left_outer else None
            stores[self.result].put(key, joined)
            self.forward(key, joined, ts)


class SubscriptionNode(_WritesAside):
    """Right side: remember the subscriber and answer it with the right value."""

    __slots__ = ("subs", "right", "sink")

    def __init__(self, name: str, right: str, sink: SinkNode) -> None:
        super().__init__(f"fk-subscriptions:{name}")
        self.subs, self.right, self.sink = f"{name}-subscriptions", right, sink

    def process(self, key, value, ts):
        stores = self.ctx.task.stores
        lk = value["lk"]
        if value["op"] == "unsub":
            stores[self.subs].delete(_sub_key(key, lk))
            return
        digest = value.get("h")
        # The subscription holds its value's digest (1 where an older version wrote none).
        stores[self.subs].put(_sub_key(key, lk), 1 if digest is None else digest)
        self.sink.process(lk, {"fk": key, "value": stores[self.right].get(key), "h": digest}, ts)


class RightChangeNode(_WritesAside):
    """Right side: a right change is sent to every left key subscribed to it."""

    __slots__ = ("subs", "sink")

    def __init__(self, name: str, sink: SinkNode) -> None:
        super().__init__(f"fk-right-change:{name}")
        self.subs, self.sink = f"{name}-subscriptions", sink

    def process(self, key, value, ts):
        store = self.ctx.task.stores[self.subs]
        prefix = _sub_prefix(key)
        for sub, digest in _subscriptions(store, prefix):
            self.sink.process(sub[1], {"fk": key, "value": value,
                                       "h": digest if isinstance(digest, str) else None}, ts)


def _subscriptions(store, prefix: bytes):
    """The (fk, left key) subscriptions under prefix with their digests: those committed
    and those since (the write-back cache decides whether a key is still subscribed)."""
    keys = {tuple(orjson.loads(kb)) for kb, _ in store.raw_items(prefix=prefix)}
    keys |= {k for k in store.dirty if orjson.dumps(k).startswith(prefix)}
    for k in keys:
        digest = store.get(k)
        if digest is not None:
            yield k, digest


class ResponseNode(Node):
    """Left side: an answer becomes the result, unless the left key moved on meanwhile."""

    __slots__ = ("left", "fk", "result", "joiner", "left_outer", "encode")

    def __init__(self, name: str, left: str, fk: Callable[[Any], Any], result: str,
                 joiner: Callable[[Any, Any], Any], left_outer: bool,
                 encode: Callable[[Any], bytes]) -> None:
        super().__init__(f"fk-response:{name}")
        self.left, self.fk, self.result = left, fk, result
        self.joiner, self.left_outer, self.encode = joiner, left_outer, encode

    def process(self, key, value, ts):
        stores = self.ctx.task.stores
        lv = stores[self.left].get(key)
        if lv is None or self.fk(lv) != value["fk"]:
            return  # stale: the left key has changed its foreign key since it asked
        if value.get("h") is not None and value["h"] != _digest(self.encode, lv):
            return  # stale: the left value changed since; its own answer follows
        rv = value["value"]
        joined = self.joiner(lv, rv) if rv is not None or self.left_outer else None
        stores[self.result].put(key, joined)
        self.forward(key, joined, ts)


def foreign_key_join(left: Position, left_spec: TableSpec, right: Position,
                     right_spec: TableSpec, name: str, fk: Callable[[Any], Any],
                     joiner: Callable[[Any, Any], Any], how: str = "inner",
                     values: Any = "json", expose: bool = True) -> tuple[TableSpec, Position]:
    """Table `name`, keyed like the left table: joiner(left value, right[fk(left value)]).
    left and right are the positions of the tables' changes; returns the result table's
    spec and the position of its changes."""
    check_how(how, ("inner", "left"))
    outer = how == "left"
    topo = left.topology
    lgroup, rgroup = left_spec.group, right_spec.group
    json = resolve("json")
    sub_topic, resp_topic = (topo.repartition_topic(f"{name}-subscription"),
                             topo.repartition_topic(f"{name}-response"))
    # The subscription topic is keyed like the right table, the response topic like the left.
    sub_sink = SinkNode(sub_topic, right_spec.keys, json)
    resp_sink = SinkNode(resp_topic, left_spec.keys, json)
    topo.internal[sub_topic] = InternalTopic(sub_topic, compact=False, partitions_from=rgroup)
    topo.internal[resp_topic] = InternalTopic(resp_topic, compact=False, partitions_from=lgroup)

    result = topo.add_table(name, left_spec.keys, resolve(values), lgroup, expose)
    topo.add_table(f"{name}-fk", left_spec.keys, json, lgroup, exposed=False)
    topo.add_table(f"{name}-subscriptions", json, resolve("json"), rgroup, exposed=False)

    merged = Node(f"fk-join:{name}")
    subscribe = SubscribeNode(name, fk, sub_sink, name, joiner, outer, left_spec.values.encode)
    subscribe.children.append(merged)
    left.then(subscribe)
    right.then(RightChangeNode(name, resp_sink))

    sub_source = SourceNode(sub_topic, right_spec.keys, json, None, None)
    sub_source.group = rgroup
    sub_source.children.append(SubscriptionNode(name, right_spec.name, resp_sink))
    topo.sources[sub_topic] = sub_source

    resp_source = SourceNode(resp_topic, left_spec.keys, json, None, None)
    resp_source.group = lgroup
    response = ResponseNode(name, left_spec.name, fk, name, joiner, outer,
                            left_spec.values.encode)
    response.children.append(merged)
    resp_source.children.append(response)
    topo.sources[resp_topic] = resp_source
    topo.sinks.update({sub_topic, resp_topic})
    return result, left.at(merged, lgroup, left_spec.keys, result.values)
