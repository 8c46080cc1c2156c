"""streamkit.wire's Produce and Fetch encodings against aiokafka's own schema classes (an
implementation written apart from ours): every version we speak, byte for byte."""
from __future__ import annotations

import io

import pytest
from aiokafka.errors import IncompatibleBrokerVersion
from aiokafka.protocol import fetch as akf
from aiokafka.protocol import produce as akp
from aiokafka.protocol.api import RequestHeader_v1

from streamkit.wire.protocol import (FETCH, PRODUCE, PartitionFetched, PartitionProduced,
                                     decode_fetch, decode_produce, fetch_request,
                                     produce_request)

BATCHES = [("orders", 0, b"\x00batch-a"), ("orders", 3, b"batch-b" * 40), ("pay", 1, b"c")]


def _grouped(items, arity):
    """[(topic, partition, *rest)] as [(topic, [(partition, *rest)])], topics in first-seen
    order (what the request carries)."""
    out: dict = {}
    for item in items:
        out.setdefault(item[0], []).append(tuple(item[1:arity]))
    return list(out.items())


@pytest.mark.parametrize("version", range(3, 9))
def test_a_produce_request_is_aiokafkas_encoding_of_the_same_fields(version):
    ours = produce_request(BATCHES, timeout_ms=30_000).prepare({PRODUCE: (3, version)})
    assert ours.API_VERSION == version
    cls = getattr(akp, f"ProduceRequest_v{version}")
    theirs = cls(None, -1, 30_000, _grouped(BATCHES, 3))
    assert ours.encode() == theirs.encode()
    header = RequestHeader_v1(theirs, correlation_id=77, client_id="streamkit-x")
    assert ours.build_request_header(77, "streamkit-x").encode() == header.encode()


def _fetch_fields(version, positions, wait, min_bytes, max_bytes, part_max, isolation):
    """FetchRequest_vN's fields, from the Fetch API's definition of each version."""
    topics = []
    for topic, parts in _grouped(positions, 3):
        rows = []
        for partition, offset in parts:
            row = [partition]
            if version >= 9:
                row.append(-1)  # current leader epoch
            row.append(offset)
            if version >= 5:
                row.append(-1)  # log start offset
            row.append(part_max)
            rows.append(tuple(row))
        topics.append((topic, rows))
    fields = [-1, wait, min_bytes, max_bytes, isolation]
    if version >= 7:
        fields += [0, -1]  # no fetch session
    fields.append(topics)
    if version >= 7:
        fields.append([])  # forgotten topics
    if version >= 11:
        fields.append("")  # rack id
    return fields


@pytest.mark.parametrize("version", range(4, 12))
def test_a_fetch_request_is_aiokafkas_encoding_of_the_same_fields(version):
    positions = [("replies", 0, 0), ("replies", 7, 123_456_789_012), ("req", 2, 5)]
    ours = fetch_request(positions, 500, 1, 50 << 20, 1 << 20, 1).prepare({FETCH: (4, version)})
    assert ours.API_VERSION == version
    cls = getattr(akf, f"FetchRequest_v{version}")
    theirs = cls(*_fetch_fields(version, positions, 500, 1, 50 << 20, 1 << 20, 1))
    assert ours.encode() == theirs.encode()


def test_the_highest_version_both_sides_speak_is_chosen_and_none_is_refused():
    assert produce_request(BATCHES, 1000).prepare({PRODUCE: (3, 12)}).API_VERSION == 8
    assert produce_request(BATCHES, 1000).prepare({PRODUCE: (0, 5)}).API_VERSION == 5
    assert fetch_request([], 1, 1, 1, 1, 0).prepare({FETCH: (4, 17)}).API_VERSION == 11
    with pytest.raises(IncompatibleBrokerVersion):
        produce_request(BATCHES, 1000).prepare({PRODUCE: (9, 12)})
    with pytest.raises(IncompatibleBrokerVersion):
        fetch_request([], 1, 1, 1, 1, 0).prepare({FETCH: (0, 3)})
    with pytest.raises(IncompatibleBrokerVersion):
        fetch_request([], 1, 1, 1, 1, 0).prepare({})


def _decoded(request, version, encoded: bytes):
    """What aiokafka's connection does with an answer: the header, then the body."""
    request.prepare({PRODUCE: (3, version), FETCH: (4, version)})
    buf = io.BytesIO((42).to_bytes(4, "big") + encoded)
    assert request.parse_response_header(buf).correlation_id == 42
    return request.RESPONSE_TYPE.decode(buf)


@pytest.mark.parametrize("version", range(3, 9))
def test_a_produce_answer_decodes_as_aiokafka_encodes_it(version):
    # partition, error, base offset, append time, log start offset
    rows = [(0, 0, 1000, -1, 40), (3, 6, -1, -1, 0)]
    msg = "not the leader" if version >= 8 else None
    parts_a, parts_b = [], [(1, 0, 5, 1_700_000_000_000, 2)]
    for partition, error, offset, ts, start in rows:
        row = [partition, error, offset, ts]
        if version >= 5:
            row.append(start)
        if version >= 8:
            row += [[(0, "bad record")] if error else [], msg if error else None]
        parts_a.append(tuple(row))
    parts_b = [tuple(list(r[:4]) + ([r[4]] if version >= 5 else [])
                     + ([[], None] if version >= 8 else [])) for r in parts_b]
    cls = getattr(akp, f"ProduceResponse_v{version}")
    encoded = cls([("orders", parts_a), ("pay", parts_b)], 0).encode()
    got = _decoded(produce_request(BATCHES, 1000), version, encoded)

    def start(s: int) -> int:
        return s if version >= 5 else -1

    assert got == {
        "orders": [PartitionProduced(0, 0, 1000, -1, start(40), None),
                   PartitionProduced(3, 6, -1, -1, start(0), msg)],
        "pay": [PartitionProduced(1, 0, 5, 1_700_000_000_000, start(2), None)],
    }


@pytest.mark.parametrize("version", range(4, 12))
def test_a_fetch_answer_decodes_as_aiokafka_encodes_it(version):
    want = [("replies", PartitionFetched(0, 0, 120, 100, [(4000, 90), (4001, 95)], b"\x01" * 61)),
            ("replies", PartitionFetched(5, 1, -1, -1, None, None)),
            ("req", PartitionFetched(2, 0, 7, 7, [], b""))]
    topics: dict = {}
    for topic, p in want:
        row = [p.partition, p.error, p.high_watermark, p.last_stable_offset]
        if version >= 5:
            row.append(0)  # log start offset
        row.append(p.aborted)
        if version >= 11:
            row.append(-1)  # preferred read replica
        row.append(p.records)
        topics.setdefault(topic, []).append(tuple(row))
    # throttle[, the request's error (FETCH_SESSION_ID_NOT_FOUND), session]
    head = [0] if version < 7 else [0, 70, 0]
    cls = getattr(akf, f"FetchResponse_v{version}")
    encoded = cls(*head, list(topics.items())).encode()
    error, got = _decoded(fetch_request([], 1, 1, 1, 1, 0), version, encoded)
    assert error == (70 if version >= 7 else 0)
    assert got == {"replies": [want[0][1], want[1][1]], "req": [want[2][1]]}
