"""Arbitrary bytes never crash the processing path: each record is processed or lands in
dead letters, and the records after it are processed."""
from __future__ import annotations

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from faust import Record
from hypothesis import given, settings, strategies as st

import streamkit
from streamkit import Settings
from streamkit.processing.task import Task


class Click(Record):
    user: str
    n: int


def build(tmp_path, keys, values):
    app = streamkit.App("fuzz", settings=Settings.from_env({}))
    app.source("in", keys=keys, values=values).group_by_key().count("n")
    app.topology.finalize()
    task = Task(app.topology, 0, 0, tmp_path)
    task.open()
    return task


def records(payloads):
    return [ConsumerRecord("in", 0, i, 0, 0, k, v, None, len(k or b""), len(v or b""), [])
            for i, (k, v) in enumerate(payloads)]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.binary(max_size=40)),
                          st.one_of(st.none(), st.binary(max_size=80))), min_size=1, max_size=20),
       st.sampled_from([("str", "json"), ("int", "json"), ("json", Click), ("str", Click)]))
def test_arbitrary_bytes_are_processed_or_dead_lettered(tmp_path_factory, payloads, serdes):
    task = build(tmp_path_factory.mktemp("fuzz"), *serdes)
    dead = []
    try:
        recs = records(payloads)
        task.process(TopicPartition("in", 0), recs, lambda r, stage, exc: dead.append((r.offset, stage)),
                     "continue")
        counted = sum(task.stores["n"].dirty.values())
        assert None not in task.stores["n"].dirty  # keyless records are dead-lettered
        # Every record was either counted once or dead-lettered once, never both or neither.
        assert counted + len(dead) == len(recs)
        assert len({o for o, _ in dead}) == len(dead)
        assert task.offsets[TopicPartition("in", 0)] == len(recs)
    finally:
        task.close()
