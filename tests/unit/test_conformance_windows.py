"""Windowed aggregations against Kafka Streams' own unit tests (KStreamWindowAggregateTest,
TimeWindowedKStreamImplTest, KStreamSlidingWindowAggregateTest, SlidingWindowedKStreamImplTest,
KStreamSessionWindowAggregateProcessorTest, SessionWindowedKStreamImplTest and
SuppressScenarioTest in apache/kafka streams/src/test/java/.../kstream/internals/): their
inputs and expected outputs, transcribed as data, with streamkit's default semantics.

A Kafka test parameterized by emit strategy gives one case with two expectations:
emit="update" (EmitStrategy.onWindowUpdate, caching disabled: every change) and
emit="final" (EmitStrategy.onWindowClose, or suppress(untilWindowCloses(unbounded())) in
SuppressScenarioTest, whose "output-raw" is the update stream). Kafka's window specs read:
TimeWindows.ofSizeAndGrace(size, grace).advanceBy(advance) is Hopping(size, advance, grace),
SlidingWindows.ofTimeDifferenceAndGrace(d, grace) is Sliding(d, grace) and
SessionWindows.ofInactivityGapAndGrace(gap, grace) is Session(gap, grace) (WithNoGrace:
grace 0). Input topics without a start time get explicit timestamps in every case here.
"""
from __future__ import annotations

import logging

import pytest

from streamkit.dsl import source_stream
from streamkit.processing.topology import Topology
from streamkit.testing import TopologyTestDriver
from streamkit.windows import Hopping, Session, Sliding, Tumbling
from tests.unit.conformance import (
    ByStart,
    I,
    LastPerWindow,
    Ordered,
    SortedByKeyAndStart,
    SortedByTextAndTime,
    W,
    WindowCase,
    emitted_from,
    run_window_case,
)

# TimeWindowedKStreamImplTest and SessionWindowedKStreamImplTest's processData, and
# SlidingWindowedKStreamImplTest's.
TIME_DATA = [I("1", "1", 10), I("1", "2", 15), I("1", "3", 500), I("2", "10", 550),
             I("2", "20", 500), I("2", "30", 1000)]
SESSION_DATA = [I("1", "1", 10), I("1", "2", 15), I("1", "3", 600), I("2", "1", 600),
                I("2", "2", 599)]
SLIDING_DATA = [I("1", "1", 100), I("1", "2", 150), I("1", "3", 500), I("2", "10", 200),
                I("2", "20", 150)]
GAP = 5 * 60 * 1000  # KStreamSessionWindowAggregateProcessorTest's GAP_MS


def session_merger(a: str, b: str) -> str:
    """SessionWindowedKStreamImplTest's sessionMerger."""
    return f"{a}+{b}"


WINDOW_CASES = [
    WindowCase(
        "KStreamWindowAggregateTest.testAggBasic",
        Hopping(10, 5, 100), None, "aggregate",
        [I("A", "1", 0), I("B", "2", 1), I("C", "3", 2), I("D", "4", 3), I("A", "1", 4), I("A", "1", 5),
         I("B", "2", 6), I("D", "4", 7), I("B", "2", 8), I("C", "3", 9), I("A", "1", 10),
         I("B", "2", 11), I("D", "4", 12), I("B", "2", 13), I("C", "3", 14), I("B", "1", 3),
         I("B", "2", 2), I("B", "3", 9)],
        update=Ordered([(W("A", 0, 10), "0+1", 0), (W("B", 0, 10), "0+2", 1), (W("C", 0, 10), "0+3", 2),
            (W("D", 0, 10), "0+4", 3), (W("A", 0, 10), "0+1+1", 4), (W("A", 0, 10), "0+1+1+1", 5),
            (W("A", 5, 15), "0+1", 5), (W("B", 0, 10), "0+2+2", 6), (W("B", 5, 15), "0+2", 6),
            (W("D", 0, 10), "0+4+4", 7), (W("D", 5, 15), "0+4", 7), (W("B", 0, 10), "0+2+2+2", 8),
            (W("B", 5, 15), "0+2+2", 8), (W("C", 0, 10), "0+3+3", 9), (W("C", 5, 15), "0+3", 9),
            (W("A", 5, 15), "0+1+1", 10), (W("A", 10, 20), "0+1", 10), (W("B", 5, 15), "0+2+2+2", 11),
            (W("B", 10, 20), "0+2", 11), (W("D", 5, 15), "0+4+4", 12), (W("D", 10, 20), "0+4", 12),
            (W("B", 5, 15), "0+2+2+2+2", 13), (W("B", 10, 20), "0+2+2", 13),
            (W("C", 5, 15), "0+3+3", 14), (W("C", 10, 20), "0+3", 14), (W("B", 0, 10), "0+2+2+2+1", 8),
            (W("B", 0, 10), "0+2+2+2+1+2", 8), (W("B", 0, 10), "0+2+2+2+1+2+3", 9),
            (W("B", 5, 15), "0+2+2+2+2+3", 13)]),
        final=Ordered([])),
    WindowCase(
        "KStreamSlidingWindowAggregateTest.testAggregateSmallInput",
        Sliding(10, 5), None, "aggregate",
        [I("A", "1", 10), I("A", "2", 10), I("A", "3", 14), I("A", "4", 15), I("A", "5", 20),
         I("A", "6", 22), I("A", "7", 30)],
        update=ByStart({
            0: {("0+1", 10), ("0+1+2", 10)},
            4: {("0+1+2+3", 14)},
            5: {("0+1+2+3+4", 15)},
            10: {("0+1+2+3+4+5", 20)},
            11: {("0+3", 14), ("0+3+4", 15), ("0+3+4+5", 20)},
            12: {("0+3+4+5+6", 22)},
            15: {("0+4", 15), ("0+4+5", 20), ("0+4+5+6", 22)},
            16: {("0+5", 20), ("0+5+6", 22)},
            20: {("0+5+6+7", 30)},
            21: {("0+6", 22), ("0+6+7", 30)},
            23: {("0+7", 30)},
        }),
        final=ByStart({
            0: {("0+1+2", 10)},
            4: {("0+1+2+3", 14)},
            5: {("0+1+2+3+4", 15)},
            10: {("0+1+2+3+4+5", 20)},
            11: {("0+3+4+5", 20)},
            12: {("0+3+4+5+6", 22)},
        })),
    WindowCase(
        "KStreamSlidingWindowAggregateTest.testReduceSmallInput",
        Sliding(10, 5), None, "reduce",
        [I("A", "1", 10), I("A", "2", 14), I("A", "3", 15), I("A", "4", 22), I("A", "5", 26),
         I("A", "6", 30)],
        update=ByStart({
            0: {("1", 10)},
            4: {("1+2", 14)},
            5: {("1+2+3", 15)},
            11: {("2", 14), ("2+3", 15)},
            12: {("2+3+4", 22)},
            15: {("3", 15), ("3+4", 22)},
            16: {("4", 22), ("4+5", 26)},
            20: {("4+5+6", 30)},
            23: {("5", 26), ("5+6", 30)},
            27: {("6", 30)},
        }),
        final=ByStart({
            0: {("1", 10)},
            4: {("1+2", 14)},
            5: {("1+2+3", 15)},
            11: {("2+3", 15)},
            12: {("2+3+4", 22)},
        })),
    WindowCase(
        "KStreamSlidingWindowAggregateTest.testAggregateLargeInput",
        Sliding(10, 50), Sliding(10, 10), "aggregate",
        [I("A", "1", 10), I("A", "2", 20), I("A", "3", 22), I("A", "4", 15), I("B", "1", 12),
         I("B", "2", 13), I("B", "3", 18), I("B", "4", 19), I("B", "5", 25), I("B", "6", 14),
         I("C", "1", 11), I("C", "2", 15), I("C", "3", 16), I("C", "4", 21), I("C", "5", 23),
         I("D", "4", 11), I("D", "2", 12), I("D", "3", 29), I("D", "5", 16)],
        update=SortedByKeyAndStart([(W("A", 0, 10), "0+1", 10), (W("A", 5, 15), "0+1+4", 15),
            (W("A", 10, 20), "0+1+2", 20), (W("A", 10, 20), "0+1+2+4", 20), (W("A", 11, 21), "0+2", 20),
            (W("A", 11, 21), "0+2+4", 20), (W("A", 12, 22), "0+2+3", 22),
            (W("A", 12, 22), "0+2+3+4", 22), (W("A", 16, 26), "0+2+3", 22), (W("A", 21, 31), "0+3", 22),
            (W("B", 2, 12), "0+1", 12), (W("B", 3, 13), "0+1+2", 13), (W("B", 4, 14), "0+1+2+6", 14),
            (W("B", 8, 18), "0+1+2+3", 18), (W("B", 8, 18), "0+1+2+3+6", 18),
            (W("B", 9, 19), "0+1+2+3+4", 19), (W("B", 9, 19), "0+1+2+3+4+6", 19),
            (W("B", 13, 23), "0+2", 13), (W("B", 13, 23), "0+2+3", 18), (W("B", 13, 23), "0+2+3+4", 19),
            (W("B", 13, 23), "0+2+3+4+6", 19), (W("B", 14, 24), "0+3", 18),
            (W("B", 14, 24), "0+3+4", 19), (W("B", 14, 24), "0+3+4+6", 19),
            (W("B", 15, 25), "0+3+4+5", 25), (W("B", 19, 29), "0+4", 19), (W("B", 19, 29), "0+4+5", 25),
            (W("B", 20, 30), "0+5", 25), (W("C", 1, 11), "0+1", 11), (W("C", 5, 15), "0+1+2", 15),
            (W("C", 6, 16), "0+1+2+3", 16), (W("C", 11, 21), "0+1+2+3+4", 21),
            (W("C", 12, 22), "0+2", 15), (W("C", 12, 22), "0+2+3", 16), (W("C", 12, 22), "0+2+3+4", 21),
            (W("C", 13, 23), "0+2+3+4+5", 23), (W("C", 16, 26), "0+3", 16),
            (W("C", 16, 26), "0+3+4", 21), (W("C", 16, 26), "0+3+4+5", 23), (W("C", 17, 27), "0+4", 21),
            (W("C", 17, 27), "0+4+5", 23), (W("C", 22, 32), "0+5", 23), (W("D", 1, 11), "0+4", 11),
            (W("D", 2, 12), "0+4+2", 12), (W("D", 6, 16), "0+4+2+5", 16), (W("D", 12, 22), "0+2", 12),
            (W("D", 12, 22), "0+2+5", 16), (W("D", 13, 23), "0+5", 16), (W("D", 19, 29), "0+3", 29)]),
        final=SortedByKeyAndStart([(W("A", 0, 10), "0+1", 10), (W("A", 5, 15), "0+1+4", 15),
            (W("B", 2, 12), "0+1", 12), (W("B", 3, 13), "0+1+2", 13), (W("B", 8, 18), "0+1+2+3+6", 18),
            (W("C", 5, 15), "0+2", 15), (W("C", 6, 16), "0+2+3", 16)])),
    WindowCase(
        "KStreamSlidingWindowAggregateTest.testEarlyRecordsSmallInput",
        Sliding(50, 0), None, "aggregate",
        [I("A", "1", 0), I("A", "2", 5), I("A", "3", 6), I("A", "4", 3), I("A", "5", 13),
         I("A", "6", 10), I("A", "7", 70)],
        update=ByStart({
            0: {("0+1", 0), ("0+1+2", 5), ("0+1+2+3", 6), ("0+1+2+3+4", 6), ("0+1+2+3+4+5", 13),
                ("0+1+2+3+4+5+6", 13)},
            1: {("0+2", 5), ("0+2+3", 6), ("0+2+3+4", 6), ("0+2+3+4+5", 13), ("0+2+3+4+5+6", 13)},
            4: {("0+2+3", 6), ("0+2+3+5", 13), ("0+2+3+5+6", 13)},
            6: {("0+3", 6), ("0+3+5", 13), ("0+3+5+6", 13)},
            7: {("0+5", 13), ("0+5+6", 13)},
            11: {("0+5", 13)},
            20: {("0+7", 70)},
        }),
        final=ByStart({
            0: {("0+1+2+3+4+5+6", 13)},
            1: {("0+2+3+4+5+6", 13)},
            4: {("0+2+3+5+6", 13)},
            6: {("0+3+5+6", 13)},
            7: {("0+5+6", 13)},
            11: {("0+5", 13)},
        })),
    WindowCase(
        "KStreamSlidingWindowAggregateTest.testEarlyRecordsRepeatedInput",
        Sliding(5, 0), None, "aggregate",
        [I("A", "1", 0), I("A", "2", 2), I("A", "3", 4), I("A", "4", 0), I("A", "5", 2), I("A", "6", 2),
         I("A", "7", 0), I("A", "8", 7)],
        update=ByStart({
            0: {("0+1", 0), ("0+1+2", 2), ("0+1+2+3", 4), ("0+1+2+3+4", 4), ("0+1+2+3+4+5", 4),
                ("0+1+2+3+4+5+6", 4), ("0+1+2+3+4+5+6+7", 4)},
            1: {("0+2", 2), ("0+2+3", 4), ("0+2+3+5", 4), ("0+2+3+5+6", 4)},
            2: {("0+2+3+5+6+8", 7)},
            3: {("0+3", 4), ("0+3+8", 7)},
            5: {("0+8", 7)},
        }),
        final=ByStart({
            0: {("0+1+2+3+4+5+6+7", 4)},
            1: {("0+2+3+5+6", 4)},
        })),
    WindowCase(
        "KStreamSlidingWindowAggregateTest.testEarlyRecordsLargeInput",
        Sliding(10, 50), Sliding(10, 1), "aggregate",
        [I("E", "1", 0), I("E", "3", 5), I("E", "4", 6), I("E", "2", 3), I("E", "6", 13),
         I("E", "5", 10), I("E", "7", 4), I("E", "8", 2), I("E", "9", 15)],
        update=SortedByKeyAndStart([(W("E", 0, 10), "0+1", 0), (W("E", 0, 10), "0+1+3", 5),
            (W("E", 0, 10), "0+1+3+4", 6), (W("E", 0, 10), "0+1+3+4+2", 6),
            (W("E", 0, 10), "0+1+3+4+2+5", 10), (W("E", 0, 10), "0+1+3+4+2+5+7", 10),
            (W("E", 0, 10), "0+1+3+4+2+5+7+8", 10), (W("E", 1, 11), "0+3", 5),
            (W("E", 1, 11), "0+3+4", 6), (W("E", 1, 11), "0+3+4+2", 6),
            (W("E", 1, 11), "0+3+4+2+5", 10), (W("E", 1, 11), "0+3+4+2+5+7", 10),
            (W("E", 1, 11), "0+3+4+2+5+7+8", 10), (W("E", 3, 13), "0+3+4+2+6", 13),
            (W("E", 3, 13), "0+3+4+2+6+5", 13), (W("E", 3, 13), "0+3+4+2+6+5+7", 13),
            (W("E", 4, 14), "0+3+4", 6), (W("E", 4, 14), "0+3+4+6", 13),
            (W("E", 4, 14), "0+3+4+6+5", 13), (W("E", 4, 14), "0+3+4+6+5+7", 13),
            (W("E", 5, 15), "0+3+4+6+5", 13), (W("E", 5, 15), "0+3+4+6+5+9", 15),
            (W("E", 6, 16), "0+4", 6), (W("E", 6, 16), "0+4+6", 13), (W("E", 6, 16), "0+4+6+5", 13),
            (W("E", 6, 16), "0+4+6+5+9", 15), (W("E", 7, 17), "0+6", 13), (W("E", 7, 17), "0+6+5", 13),
            (W("E", 7, 17), "0+6+5+9", 15), (W("E", 11, 21), "0+6", 13), (W("E", 11, 21), "0+6+9", 15),
            (W("E", 14, 24), "0+9", 15)]),
        final=SortedByKeyAndStart([(W("E", 0, 10), "0+1+3+4+2", 6), (W("E", 1, 11), "0+3+4+2", 6),
            (W("E", 3, 13), "0+3+4+2+6+5+7", 13)])),
    WindowCase(
        "KStreamSlidingWindowAggregateTest.testEarlyNoGracePeriodSmallInput",
        Sliding(50, 0), None, "aggregate",
        [I("A", "1", 0), I("A", "2", 5), I("A", "3", 6), I("A", "4", 3), I("A", "5", 13),
         I("A", "6", 10), I("A", "6", 70)],
        update=ByStart({
            0: {("0+1", 0), ("0+1+2", 5), ("0+1+2+3", 6), ("0+1+2+3+4", 6), ("0+1+2+3+4+5", 13),
                ("0+1+2+3+4+5+6", 13)},
            1: {("0+2", 5), ("0+2+3", 6), ("0+2+3+4", 6), ("0+2+3+4+5", 13), ("0+2+3+4+5+6", 13)},
            4: {("0+2+3", 6), ("0+2+3+5", 13), ("0+2+3+5+6", 13)},
            6: {("0+3", 6), ("0+3+5", 13), ("0+3+5+6", 13)},
            7: {("0+5", 13), ("0+5+6", 13)},
            11: {("0+5", 13)},
            20: {("0+6", 70)},
        }),
        final=ByStart({
            0: {("0+1+2+3+4+5+6", 13)},
            1: {("0+2+3+4+5+6", 13)},
            4: {("0+2+3+5+6", 13)},
            6: {("0+3+5+6", 13)},
            7: {("0+5+6", 13)},
            11: {("0+5", 13)},
        })),
    WindowCase(
        "KStreamSlidingWindowAggregateTest.testNoGracePeriodSmallInput",
        Sliding(50, 0), None, "aggregate",
        [I("A", "1", 100), I("A", "2", 105), I("A", "3", 106), I("A", "4", 103), I("A", "5", 113),
         I("A", "6", 110)],
        update=ByStart({
            50: {("0+1", 100)},
            55: {("0+1+2", 105)},
            56: {("0+1+2+3", 106), ("0+1+2+3+4", 106)},
            63: {("0+1+2+3+4+5", 113), ("0+1+2+3+4+5+6", 113)},
            101: {("0+2", 105), ("0+2+3", 106), ("0+2+3+4", 106), ("0+2+3+4+5", 113),
                ("0+2+3+4+5+6", 113)},
            104: {("0+2+3", 106), ("0+2+3+5", 113), ("0+2+3+5+6", 113)},
            106: {("0+3", 106), ("0+3+5", 113), ("0+3+5+6", 113)},
            107: {("0+5", 113), ("0+5+6", 113)},
            111: {("0+5", 113)},
        }),
        final=ByStart({
            50: {("0+1", 100)},
            55: {("0+1+2", 105)},
            56: {("0+1+2+3+4", 106)},
        })),
    WindowCase(
        "KStreamSlidingWindowAggregateTest.testEarlyNoGracePeriodLargeInput",
        Sliding(10, 0), None, "aggregate",
        [I("E", "1", 0), I("E", "3", 5), I("E", "4", 6), I("E", "2", 3), I("E", "6", 13),
         I("E", "5", 10), I("E", "7", 4), I("E", "8", 2), I("E", "9", 15)],
        update=SortedByKeyAndStart([(W("E", 0, 10), "0+1", 0), (W("E", 0, 10), "0+1+3", 5),
            (W("E", 0, 10), "0+1+3+4", 6), (W("E", 0, 10), "0+1+3+4+2", 6), (W("E", 1, 11), "0+3", 5),
            (W("E", 1, 11), "0+3+4", 6), (W("E", 1, 11), "0+3+4+2", 6),
            (W("E", 3, 13), "0+3+4+2+6", 13), (W("E", 3, 13), "0+3+4+2+6+5", 13),
            (W("E", 3, 13), "0+3+4+2+6+5+7", 13), (W("E", 4, 14), "0+3+4", 6),
            (W("E", 4, 14), "0+3+4+6", 13), (W("E", 4, 14), "0+3+4+6+5", 13),
            (W("E", 4, 14), "0+3+4+6+5+7", 13), (W("E", 5, 15), "0+3+4+6+5", 13),
            (W("E", 5, 15), "0+3+4+6+5+9", 15), (W("E", 6, 16), "0+4", 6), (W("E", 6, 16), "0+4+6", 13),
            (W("E", 6, 16), "0+4+6+5", 13), (W("E", 6, 16), "0+4+6+5+9", 15),
            (W("E", 7, 17), "0+6", 13), (W("E", 7, 17), "0+6+5", 13), (W("E", 7, 17), "0+6+5+9", 15),
            (W("E", 11, 21), "0+6", 13), (W("E", 11, 21), "0+6+9", 15), (W("E", 14, 24), "0+9", 15)]),
        final=SortedByKeyAndStart([(W("E", 0, 10), "0+1+3+4+2", 6), (W("E", 1, 11), "0+3+4+2", 6),
            (W("E", 3, 13), "0+3+4+2+6+5+7", 13), (W("E", 4, 14), "0+3+4+6+5+7", 13)])),
    WindowCase(
        "KStreamSlidingWindowAggregateTest.testNoGracePeriodLargeInput",
        Sliding(10, 0), None, "aggregate",
        [I("E", "1", 100), I("E", "3", 105), I("E", "4", 106), I("E", "2", 103), I("E", "6", 113),
         I("E", "5", 110), I("E", "7", 104), I("E", "8", 102), I("E", "9", 115)],
        update=SortedByKeyAndStart([(W("E", 90, 100), "0+1", 100), (W("E", 95, 105), "0+1+3", 105),
            (W("E", 96, 106), "0+1+3+4", 106), (W("E", 96, 106), "0+1+3+4+2", 106),
            (W("E", 101, 111), "0+3", 105), (W("E", 101, 111), "0+3+4", 106),
            (W("E", 101, 111), "0+3+4+2", 106), (W("E", 103, 113), "0+3+4+2+6", 113),
            (W("E", 103, 113), "0+3+4+2+6+5", 113), (W("E", 103, 113), "0+3+4+2+6+5+7", 113),
            (W("E", 104, 114), "0+3+4", 106), (W("E", 104, 114), "0+3+4+6", 113),
            (W("E", 104, 114), "0+3+4+6+5", 113), (W("E", 104, 114), "0+3+4+6+5+7", 113),
            (W("E", 105, 115), "0+3+4+6+5", 113), (W("E", 105, 115), "0+3+4+6+5+9", 115),
            (W("E", 106, 116), "0+4", 106), (W("E", 106, 116), "0+4+6", 113),
            (W("E", 106, 116), "0+4+6+5", 113), (W("E", 106, 116), "0+4+6+5+9", 115),
            (W("E", 107, 117), "0+6", 113), (W("E", 107, 117), "0+6+5", 113),
            (W("E", 107, 117), "0+6+5+9", 115), (W("E", 111, 121), "0+6", 113),
            (W("E", 111, 121), "0+6+9", 115), (W("E", 114, 124), "0+9", 115)]),
        final=SortedByKeyAndStart([(W("E", 90, 100), "0+1", 100), (W("E", 95, 105), "0+1+3", 105),
            (W("E", 96, 106), "0+1+3+4+2", 106), (W("E", 101, 111), "0+3+4+2", 106),
            (W("E", 103, 113), "0+3+4+2+6+5+7", 113), (W("E", 104, 114), "0+3+4+6+5+7", 113)])),
    WindowCase(
        "KStreamWindowAggregateTest.shouldLogAndMeterWhenSkippingExpiredWindow",
        Hopping(10, 5, 90), None, "aggregate",
        [I("k", "100", 100), I("k", "0", 0), I("k", "1", 1), I("k", "2", 2), I("k", "3", 3),
         I("k", "4", 4), I("k", "5", 5), I("k", "6", 6), I("k", "105", 105), I("k", "106", 106)],
        update=Ordered([(W("k", 95, 105), "+100", 100), (W("k", 100, 110), "+100", 100),
                        (W("k", 5, 15), "+5", 5), (W("k", 5, 15), "+5+6", 6),
                        (W("k", 100, 110), "+100+105", 105), (W("k", 105, 115), "+105", 105),
                        (W("k", 100, 110), "+100+105+106", 106),
                        (W("k", 105, 115), "+105+106", 106)]),
        final=Ordered([(W("k", 5, 15), "+5+6", 6)]),
        initial="", late=7),
    WindowCase(
        "KStreamWindowAggregateTest.shouldLogAndMeterWhenSkippingExpiredWindowByGrace",
        Tumbling(10, 90), None, "aggregate",
        [I("k", "100", 200), I("k", "0", 100), I("k", "1", 101), I("k", "2", 102),
         I("k", "3", 103), I("k", "4", 104), I("k", "5", 105), I("k", "6", 6)],
        update=Ordered([(W("k", 200, 210), "+100", 200)]),
        final=None,
        initial="", late=7),
    WindowCase(
        "TimeWindowedKStreamImplTest.shouldCountWindowed",
        Tumbling(500, 0), None, "count", TIME_DATA,
        update=Ordered([(W("1", 0, 500), 1, 10), (W("1", 0, 500), 2, 15), (W("1", 500, 1000), 1, 500),
                        (W("2", 500, 1000), 1, 550), (W("2", 500, 1000), 2, 550),
                        (W("2", 1000, 1500), 1, 1000)]),
        final=Ordered([(W("1", 0, 500), 2, 15), (W("1", 500, 1000), 1, 500),
                       (W("2", 500, 1000), 2, 550)])),
    WindowCase(
        "TimeWindowedKStreamImplTest.shouldReduceWindowed",
        Tumbling(500, 0), None, "reduce", TIME_DATA,
        update=Ordered([(W("1", 0, 500), "1", 10), (W("1", 0, 500), "1+2", 15),
                        (W("1", 500, 1000), "3", 500), (W("2", 500, 1000), "10", 550),
                        (W("2", 500, 1000), "10+20", 550), (W("2", 1000, 1500), "30", 1000)]),
        final=Ordered([(W("1", 0, 500), "1+2", 15), (W("1", 500, 1000), "3", 500),
                       (W("2", 500, 1000), "10+20", 550)])),
    WindowCase(
        "TimeWindowedKStreamImplTest.shouldAggregateWindowed",
        Tumbling(500, 0), None, "aggregate", TIME_DATA,
        update=Ordered([(W("1", 0, 500), "0+1", 10), (W("1", 0, 500), "0+1+2", 15),
                        (W("1", 500, 1000), "0+3", 500), (W("2", 500, 1000), "0+10", 550),
                        (W("2", 500, 1000), "0+10+20", 550), (W("2", 1000, 1500), "0+30", 1000)]),
        final=Ordered([(W("1", 0, 500), "0+1+2", 15), (W("1", 500, 1000), "0+3", 500),
                       (W("2", 500, 1000), "0+10+20", 550)])),
    WindowCase(
        "SuppressScenarioTest.shouldSupportFinalResultsForTimeWindows",
        Tumbling(2, 1), None, "count",
        [I("k1", "v1", 0), I("k1", "v1", 1), I("k1", "v1", 2), I("k1", "v1", 1), I("k1", "v1", 0),
         I("k1", "v1", 5), I("k1", "v1", 0)],
        update=Ordered([(W("k1", 0, 2), 1, 0), (W("k1", 0, 2), 2, 1), (W("k1", 2, 4), 1, 2),
                        (W("k1", 0, 2), 3, 1), (W("k1", 0, 2), 4, 1), (W("k1", 4, 6), 1, 5)]),
        final=Ordered([(W("k1", 0, 2), 4, 1), (W("k1", 2, 4), 1, 2)])),
    WindowCase(
        "SuppressScenarioTest.shouldSupportFinalResultsForTimeWindowsWithLargeJump",
        Tumbling(2, 2), None, "count",
        [I("k1", "v1", 0), I("k1", "v1", 1), I("k1", "v1", 2), I("k1", "v1", 0), I("k1", "v1", 3),
         I("k1", "v1", 0), I("k1", "v1", 4), I("k1", "v1", 0), I("k1", "v1", 30)],
        update=Ordered([(W("k1", 0, 2), 1, 0), (W("k1", 0, 2), 2, 1), (W("k1", 2, 4), 1, 2),
                        (W("k1", 0, 2), 3, 1), (W("k1", 2, 4), 2, 3), (W("k1", 0, 2), 4, 1),
                        (W("k1", 4, 6), 1, 4), (W("k1", 30, 32), 1, 30)]),
        final=Ordered([(W("k1", 0, 2), 4, 1), (W("k1", 2, 4), 2, 3), (W("k1", 4, 6), 1, 4)])),
    WindowCase(
        "KStreamSlidingWindowAggregateTest.shouldLogAndMeterWhenSkippingExpiredWindowByGrace",
        Sliding(10, 90), None, "aggregate",
        [I("k", "100", 200), I("k", "0", 100), I("k", "1", 101), I("k", "2", 102),
         I("k", "3", 103), I("k", "4", 104), I("k", "5", 105), I("k", "6", 15),
         I("k", "101", 300), I("k", "102", 400)],
        update=Ordered([(W("k", 190, 200), "0+100", 200), (W("k", 290, 300), "0+101", 300),
                        (W("k", 390, 400), "0+102", 400)]),
        final=Ordered([(W("k", 190, 200), "0+100", 200), (W("k", 290, 300), "0+101", 300)]),
        late=7),
    WindowCase(
        "SlidingWindowedKStreamImplTest.shouldCountSlidingWindows",
        Sliding(100, 1000), None, "count", SLIDING_DATA,
        update=LastPerWindow({W("1", 0, 100): (1, 100), W("1", 101, 201): (1, 150),
                              W("1", 50, 150): (2, 150), W("1", 400, 500): (1, 500),
                              W("2", 100, 200): (2, 200), W("2", 50, 150): (1, 150),
                              W("2", 151, 251): (1, 200)}),
        final=None),
    WindowCase(
        "SlidingWindowedKStreamImplTest.shouldReduceSlidingWindows",
        Sliding(100, 1000), None, "reduce", SLIDING_DATA,
        update=LastPerWindow({W("1", 0, 100): ("1", 100), W("1", 101, 201): ("2", 150),
                              W("1", 50, 150): ("1+2", 150), W("1", 400, 500): ("3", 500),
                              W("2", 100, 200): ("10+20", 200), W("2", 50, 150): ("20", 150),
                              W("2", 151, 251): ("10", 200)}),
        final=None),
    WindowCase(
        "SlidingWindowedKStreamImplTest.shouldAggregateSlidingWindows",
        Sliding(100, 1000), None, "aggregate", SLIDING_DATA,
        update=LastPerWindow({W("1", 0, 100): ("0+1", 100), W("1", 101, 201): ("0+2", 150),
                              W("1", 50, 150): ("0+1+2", 150), W("1", 400, 500): ("0+3", 500),
                              W("2", 100, 200): ("0+10+20", 200), W("2", 50, 150): ("0+20", 150),
                              W("2", 151, 251): ("0+10", 200)}),
        final=None),
    WindowCase(
        "SuppressScenarioTest.shouldSupportFinalResultsForSlidingWindows",
        Sliding(5, 15), None, "count",
        [I("k1", "v1", 10), I("k1", "v1", 11), I("k1", "v1", 10), I("k1", "v1", 13),
         I("k1", "v1", 10), I("k1", "v1", 24), I("k1", "v1", 5), I("k1", "v1", 7),
         I("k1", "v1", 90)],
        update=SortedByTextAndTime([
            (W("k1", 11, 16), 1, 11), (W("k1", 11, 16), 2, 13), (W("k1", 12, 17), 1, 13),
            (W("k1", 19, 24), 1, 24), (W("k1", 5, 10), 1, 10), (W("k1", 5, 10), 2, 10),
            (W("k1", 5, 10), 3, 10), (W("k1", 5, 10), 4, 10), (W("k1", 5, 10), 5, 10),
            (W("k1", 6, 11), 2, 11), (W("k1", 6, 11), 3, 11), (W("k1", 6, 11), 4, 11),
            (W("k1", 6, 11), 5, 11), (W("k1", 8, 13), 4, 13), (W("k1", 8, 13), 5, 13),
            (W("k1", 85, 90), 1, 90)]),
        final=Ordered([(W("k1", 5, 10), 5, 10), (W("k1", 6, 11), 5, 11), (W("k1", 8, 13), 5, 13),
                       (W("k1", 11, 16), 2, 13), (W("k1", 12, 17), 1, 13),
                       (W("k1", 19, 24), 1, 24)])),
    WindowCase(
        "SessionWindowedKStreamImplTest.shouldCountSessionWindowedWithCachingDisabled",
        Session(500, 0), None, "count", SESSION_DATA,
        update=Ordered([(W("1", 10, 10), 1, 10), (W("1", 10, 10), None, 10),
                        (W("1", 10, 15), 2, 15), (W("1", 600, 600), 1, 600),
                        (W("2", 600, 600), 1, 600), (W("2", 600, 600), None, 600),
                        (W("2", 599, 600), 2, 600)]),
        final=Ordered([(W("1", 10, 15), 2, 15)])),
    WindowCase(
        "SessionWindowedKStreamImplTest.shouldReduceWindowed",
        Session(500, 0), None, "reduce", SESSION_DATA,
        update=Ordered([(W("1", 10, 10), "1", 10), (W("1", 10, 10), None, 10),
                        (W("1", 10, 15), "1+2", 15), (W("1", 600, 600), "3", 600),
                        (W("2", 600, 600), "1", 600), (W("2", 600, 600), None, 600),
                        (W("2", 599, 600), "1+2", 600)]),
        final=Ordered([(W("1", 10, 15), "1+2", 15)])),
    WindowCase(
        "SessionWindowedKStreamImplTest.shouldAggregateSessionWindowed",
        Session(500, 0), None, "aggregate", SESSION_DATA,
        update=Ordered([(W("1", 10, 10), "0+1", 10), (W("1", 10, 10), None, 10),
                        (W("1", 10, 15), "0+0+1+2", 15), (W("1", 600, 600), "0+3", 600),
                        (W("2", 600, 600), "0+1", 600), (W("2", 600, 600), None, 600),
                        (W("2", 599, 600), "0+0+1+2", 600)]),
        final=Ordered([(W("1", 10, 15), "0+0+1+2", 15)]),
        merge=session_merger),
    WindowCase(
        "SuppressScenarioTest.shouldSupportFinalResultsForSessionWindows",
        Session(5, 0), None, "count",
        [I("k1", "v1", 0), I("k1", "v1", 5), I("k1", "v1", 1), I("k2", "v1", 11),
         I("k1", "v1", 5), I("k1", "v1", 30)],
        update=Ordered([(W("k1", 0, 0), 1, 0), (W("k1", 0, 0), None, 0), (W("k1", 0, 5), 2, 5),
                        (W("k1", 0, 5), None, 5), (W("k1", 0, 5), 3, 5), (W("k2", 11, 11), 1, 11),
                        (W("k1", 30, 30), 1, 30)]),
        final=Ordered([(W("k1", 0, 5), 3, 5), (W("k2", 11, 11), 1, 11)])),
]


@pytest.mark.parametrize("case", WINDOW_CASES, ids=lambda c: c.kafka_test)
@pytest.mark.parametrize("emit", ["update", "final"])
def test_windowed_aggregation_gives_kafka_streams_records(case, emit):
    run_window_case(case, emit)


def test_every_transcribed_case_names_its_kafka_test():
    names = [c.kafka_test for c in WINDOW_CASES]
    assert len(names) == len(set(names))


# --------------------------------------------------------------------------- session processor
# KStreamSessionWindowAggregateProcessorTest: Session(GAP, 0) with initializer 0, aggregator
# count + 1 and merger a + b (a count); the Kafka test reads its session store
# (findSessions) or the records forwarded. Each case: records (key, timestamp), then the
# open sessions of the store, or the results of one emit mode, and the records dropped late.

def sessions_topology(spec: Session, emit: str) -> Topology:
    topo = Topology("conformance")
    (source_stream(topo, "in", "str", "str", None, None).group_by_key().windowed_by(spec)
        .aggregate("store", initial=0, add=lambda n, _v: n + 1, merge=lambda a, b: a + b,
                   emit=emit, to="out", values="int"))
    return topo


SESSION_PROCESSOR_CASES = {
    "shouldCreateSingleSessionWhenWithinGap": (
        Session(GAP, 0), "update", [("john", 0), ("john", 500)],
        {"store": {W("john", 0, 500): 2}}),
    "shouldUpdateSessionIfTheSameTime": (
        Session(GAP, 0), "update", [("mel", 0), ("mel", 0)],
        {"store": {W("mel", 0, 0): 2}}),
    "shouldRemoveMergedSessionsFromStateStore": (
        Session(GAP, 0), "update", [("a", 0), ("a", 100)],
        {"store": {W("a", 0, 100): 2}}),
    "shouldHaveMultipleSessionsForSameIdWhenTimestampApartBySessionGap": (
        Session(GAP, 0), "final",
        [("mel", 0), ("mel", GAP + 1), ("mel", GAP + 1), ("mel", 2 * GAP + 2),
         ("mel", 2 * GAP + 2), ("mel", 2 * GAP + 2)],
        {"out": [(W("mel", 0, 0), 1, 0), (W("mel", GAP + 1, GAP + 1), 2, GAP + 1)]}),
    "shouldHandleMultipleSessionsAndMerging": (
        Session(GAP, 0), "final",
        [("a", 0), ("b", 0), ("c", 0), ("d", 0), ("d", GAP // 2), ("a", GAP + 1), ("b", GAP + 1),
         ("a", GAP + 1 + GAP // 2), ("c", GAP + 1 + GAP // 2)],
        {"out": [(W("a", 0, 0), 1, 0), (W("b", 0, 0), 1, 0), (W("c", 0, 0), 1, 0),
                 (W("d", 0, GAP // 2), 2, GAP // 2)]}),
    "shouldImmediatelyForwardNewSessionWhenNonCachedStore": (
        Session(GAP, 0), "update", [("a", 0), ("b", 0), ("c", 0)],
        {"out": [(W("a", 0, 0), 1, 0), (W("b", 0, 0), 1, 0), (W("c", 0, 0), 1, 0)]}),
    "shouldImmediatelyForwardRemovedSessionsWhenMerging": (
        Session(GAP, 0), "update", [("a", 0), ("a", 5)],
        {"out": [(W("a", 0, 0), 1, 0), (W("a", 0, 0), None, 0), (W("a", 0, 5), 2, 5)]}),
    "shouldLogAndMeterWhenSkippingLateRecordWithZeroGrace": (
        Session(10, 0), "update",
        [("dummy", 0), ("OnTime1", 0), ("dummy", 11), ("Late1", 0)],
        {"late": 1}),
    "shouldLogAndMeterWhenSkippingLateRecordWithNonzeroGrace": (
        Session(10, 1), "update",
        [("dummy", 0), ("OnTime1", 0), ("dummy", 11), ("OnTime2", 0), ("dummy", 12), ("Late1", 0)],
        {"late": 1}),
}


@pytest.mark.parametrize("name", SESSION_PROCESSOR_CASES)
def test_session_aggregation_gives_kafka_streams_records(name):
    logging.getLogger("streamkit.windows.late").setLevel(logging.ERROR)
    spec, emit, records, expected = SESSION_PROCESSOR_CASES[name]
    with TopologyTestDriver(sessions_topology(spec, emit)) as driver:
        for key, ts in records:
            driver.pipe("in", key, "1", ts)
        if "store" in expected:
            assert driver.table("store") == expected["store"]
        if "out" in expected:
            assert emitted_from("out")(driver) == expected["out"]
        if "late" in expected:
            assert driver.late_records == expected["late"]


def test_cases_count():
    """The conformance suite: more than 40 cases transcribed from Kafka Streams' tests."""
    from tests.unit.test_conformance_joins import JOIN_CASES, TABLE_CASES
    assert len(JOIN_CASES) + len(TABLE_CASES) + len(WINDOW_CASES) + len(SESSION_PROCESSOR_CASES) >= 40


# --------------------------------------------------------------------------- differences
# Each asserts streamkit's documented behaviour (docs/windows.md, "Differences from Kafka
# Streams") on the input of the Kafka test it departs from.

def test_difference_a_closed_session_is_never_merged_into():
    """Departs from KStreamSessionWindowAggregateProcessorTest.shouldMergeSessions, whose
    session store keeps sessions for 3 x GAP: Kafka Streams then merges "third" (GAP / 2)
    into [0, 0] although the stream time GAP + 1 had closed that session (and emitted it,
    with onWindowClose). streamkit closes a session at end + gap + grace, as Kafka Streams
    with its default store retention (gap + grace) hides it, and never reopens it."""
    with TopologyTestDriver(sessions_topology(Session(GAP, 0), "final")) as driver:
        for ts in (0, GAP + 1, GAP // 2):
            driver.pipe("in", "mel", "1", ts)
        assert emitted_from("out")(driver) == [(W("mel", 0, 0), 1, 0)]
        assert driver.table("store") == {W("mel", GAP // 2, GAP + 1): 2}


def test_difference_a_session_is_merged_into_until_it_closes():
    """Departs from Kafka Streams' session store without its record cache (the store of
    KStreamSessionWindowAggregateProcessorTest's uncached cases): it hides a session whose
    end is exactly stream time - gap - grace, so a record within the gap of it starts a
    second session, [0, 0] and [5, 5] here; with the cache (Kafka's default) the record
    merges, as in streamkit, where a session takes records until stream time passes
    end + gap + grace."""
    with TopologyTestDriver(sessions_topology(Session(10, 0), "update")) as driver:
        for key, ts in (("A", 0), ("dummy", 10), ("A", 5)):
            driver.pipe("in", key, "1", ts)
        assert driver.table("store") == {W("A", 0, 5): 2, W("dummy", 10, 10): 1}
