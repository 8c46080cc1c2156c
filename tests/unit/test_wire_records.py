"""What RequestConsumer hands out of a fetch answer (streamkit.wire.consumer.decode_records),
against Kafka's rules for consumers: from the fetch position on, control batches never,
and with read_committed no record of a transaction the answer lists as aborted, from its
first offset up to its abort marker. The batches are built with aiokafka's batch builder and
given their base offsets and control flags as a broker writes them."""
from __future__ import annotations

import struct

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import CorruptRecordException, UnsupportedCodecError
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.util import calc_crc32c

from streamkit.wire.consumer import decode_records

TP = TopicPartition("orders", 2)
TXN, PLAIN = 7, -1
COMMIT, ABORT = 1, 0


def batch(base: int, values: list[bytes], producer: int, control: int | None = None) -> bytes:
    """A record batch at offset `base`; with control, a transaction's marker (one record
    whose key is (version 0, type))."""
    builder = DefaultRecordBatchBuilder(2, 0, int(producer != PLAIN), producer, 0, 0, 1 << 20)
    if control is None:
        for i, v in enumerate(values):
            builder.append(i, 1000 + base + i, b"k", v, [])
    else:
        builder.append(0, 1000 + base, struct.pack(">hh", 0, control), struct.pack(">hi", 0, 3),
                       [])
    raw = bytearray(builder.build())
    raw[0:8] = struct.pack(">q", base)
    if control is not None:
        raw[22] |= 0x20  # the attributes' control bit (attributes: bytes 21-22)
        sign(raw)
    return bytes(raw)


def sign(raw: bytearray) -> None:
    """The batch's CRC-32C (bytes 17-20), over everything from its attributes on."""
    raw[17:21] = struct.pack(">I", calc_crc32c(bytes(raw[21:])))


LOG = b"".join([
    batch(0, [b"t0", b"t1"], TXN),
    batch(2, [b"p2"], PLAIN),
    batch(3, [], TXN, control=COMMIT),
    batch(4, [b"t4", b"t5"], TXN),        # aborted below
    batch(6, [], TXN, control=ABORT),
    batch(7, [b"t7"], TXN),               # the same producer's next transaction, committed
    batch(8, [], TXN, control=COMMIT),
])


def values(records) -> list[tuple[int, bytes]]:
    return [(r.offset, r.value) for r in records]


def test_read_committed_drops_the_aborted_transaction_and_every_marker():
    records, next_offset = decode_records(TP, 0, LOG, [(TXN, 4)])
    assert values(records) == [(0, b"t0"), (1, b"t1"), (2, b"p2"), (7, b"t7")]
    assert next_offset == 9
    assert {(r.topic, r.partition, r.key) for r in records} == {("orders", 2, b"k")}
    assert [r.timestamp for r in records] == [1000, 1001, 1002, 1007]


def test_read_uncommitted_keeps_aborted_records_and_still_drops_markers():
    records, next_offset = decode_records(TP, 0, LOG, None)
    assert values(records) == [(0, b"t0"), (1, b"t1"), (2, b"p2"), (4, b"t4"), (5, b"t5"),
                               (7, b"t7")]
    assert next_offset == 9


def test_records_before_the_position_are_left_out_even_inside_a_batch():
    records, next_offset = decode_records(TP, 1, LOG, [(TXN, 4)])
    assert values(records) == [(1, b"t1"), (2, b"p2"), (7, b"t7")]
    records, next_offset = decode_records(TP, 5, LOG, [(TXN, 4)])
    assert values(records) == [(7, b"t7")] and next_offset == 9


def test_an_answer_of_markers_and_aborted_records_only_moves_the_position():
    tail = batch(4, [b"t4", b"t5"], TXN) + batch(6, [], TXN, control=ABORT)
    assert decode_records(TP, 4, tail, [(TXN, 4)]) == ([], 7)


def test_a_batch_cut_off_at_the_answer_s_size_limit_waits_for_the_next_fetch():
    cut = LOG + batch(9, [b"t9" * 50], PLAIN)[:40]
    records, next_offset = decode_records(TP, 0, cut, [(TXN, 4)])
    assert values(records)[-1] == (7, b"t7") and next_offset == 9


def test_nothing_in_an_empty_answer():
    assert decode_records(TP, 12, None, None) == ([], 12)
    assert decode_records(TP, 12, b"", []) == ([], 12)


def test_a_batch_that_fails_its_crc_is_refused_at_the_position():
    bad = bytearray(batch(9, [b"t9", b"t10"], PLAIN))
    bad[-1] ^= 0x01  # a bit of the last record's value, on the way from the broker
    with pytest.raises(CorruptRecordException, match="CRC"):
        decode_records(TP, 9, bytes(bad), None)


def test_the_records_before_a_batch_that_does_not_decode_are_handed_out_first():
    bad = bytearray(batch(9, [b"t9", b"t10"], PLAIN))
    bad[22] |= 0x04  # attributes: compressed with codec 4 (zstd), which nothing is
    sign(bad)
    records, next_offset = decode_records(TP, 0, LOG + bytes(bad), [(TXN, 4)])
    assert values(records) == [(0, b"t0"), (1, b"t1"), (2, b"p2"), (7, b"t7")]
    assert next_offset == 9  # the next fetch starts at the bad batch and raises there
    with pytest.raises((CorruptRecordException, UnsupportedCodecError)):
        decode_records(TP, 9, bytes(bad) + batch(11, [b"p11"], PLAIN), None)
    # Only markers before it: the position moves up to it.
    marker = batch(8, [], TXN, control=COMMIT)
    assert decode_records(TP, 8, marker + bytes(bad), None) == ([], 9)
