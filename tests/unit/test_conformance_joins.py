"""Stream-stream and stream-table joins against Kafka Streams' own unit tests
(KStreamKStreamJoinTest, KStreamKStreamLeftJoinTest, KStreamKStreamOuterJoinTest,
KStreamKTableJoinTest in apache/kafka streams/src/test/java/.../kstream/internals/): their
inputs and expected outputs, transcribed as data.

Every stream-stream case gives Kafka Streams' records with join_window(...,
semantics="kafka"); the cases marked same=True give them with streamkit's default
semantics too. Where the default departs (a stream time per input, late records that join
nothing, no null result before a match), a test below asserts streamkit's documented
behaviour on the Kafka test's input (docs/joins.md, "Differences from Kafka Streams").

Kafka's tests key both topics by Integer; topic1's values are Strings, topic2's Strings
(Long in KStreamKStreamOuterJoinTest). Records piped without a timestamp have 0 (the
tests' input topics start at 0 and do not advance).
"""
from __future__ import annotations

import pytest

from streamkit import JoinWindows
from streamkit.dsl import source_stream
from streamkit.dsl.streams import table_from_topic
from streamkit.processing.topology import Topology
from streamkit.testing import TopologyTestDriver
from tests.unit.conformance import (
    JoinCase,
    L,
    R,
    join_topology,
    joined,
    run_join,
    run_steps,
    tostring_joiner,
)

JOIN_CASES = [
    JoinCase(
        "KStreamKStreamJoinTest.testJoin",
        "inner", JoinWindows(100, 100, 0), same=True, steps=[
        ([L(0, "A0", 0), L(1, "A1", 0)],
         []),
        ([R(0, "a0", 0), R(1, "a1", 0)],
         [(0, "A0+a0", 0), (1, "A1+a1", 0)]),
        ([L(0, "B0", 0), L(1, "B1", 0), L(2, "B2", 0), L(3, "B3", 0)],
         [(0, "B0+a0", 0), (1, "B1+a1", 0)]),
        ([R(0, "b0", 0), R(1, "b1", 0), R(2, "b2", 0), R(3, "b3", 0)],
         [(0, "A0+b0", 0), (0, "B0+b0", 0), (1, "A1+b1", 0), (1, "B1+b1", 0), (2, "B2+b2", 0),
          (3, "B3+b3", 0)]),
        ([L(0, "C0", 0), L(1, "C1", 0), L(2, "C2", 0), L(3, "C3", 0)],
         [(0, "C0+a0", 0), (0, "C0+b0", 0), (1, "C1+a1", 0), (1, "C1+b1", 0), (2, "C2+b2", 0),
          (3, "C3+b3", 0)]),
        ([R(0, "c0", 0), R(1, "c1", 0)],
         [(0, "A0+c0", 0), (0, "B0+c0", 0), (0, "C0+c0", 0), (1, "A1+c1", 0), (1, "B1+c1", 0),
          (1, "C1+c1", 0)]),
    ]),
    JoinCase(
        "KStreamKStreamJoinTest.testOuterJoin",
        "outer", JoinWindows(100, 100, 24 * 3_600_000), same=True, steps=[
        ([L(0, "A0", 0), L(1, "A1", 0)],
         []),
        ([R(0, "a0", 0), R(1, "a1", 0)],
         [(0, "A0+a0", 0), (1, "A1+a1", 0)]),
        ([L(0, "B0", 0), L(1, "B1", 0), L(2, "B2", 0), L(3, "B3", 0)],
         [(0, "B0+a0", 0), (1, "B1+a1", 0)]),
        ([R(0, "b0", 0), R(1, "b1", 0), R(2, "b2", 0), R(3, "b3", 0)],
         [(0, "A0+b0", 0), (0, "B0+b0", 0), (1, "A1+b1", 0), (1, "B1+b1", 0), (2, "B2+b2", 0),
          (3, "B3+b3", 0)]),
        ([L(0, "C0", 0), L(1, "C1", 0), L(2, "C2", 0), L(3, "C3", 0)],
         [(0, "C0+a0", 0), (0, "C0+b0", 0), (1, "C1+a1", 0), (1, "C1+b1", 0), (2, "C2+b2", 0),
          (3, "C3+b3", 0)]),
        ([R(0, "c0", 0), R(1, "c1", 0)],
         [(0, "A0+c0", 0), (0, "B0+c0", 0), (0, "C0+c0", 0), (1, "A1+c1", 0), (1, "B1+c1", 0),
          (1, "C1+c1", 0)]),
    ]),
    JoinCase(
        "KStreamKStreamJoinTest.testWindowing",
        "inner", JoinWindows(100, 100, 0), same=False, steps=[
        ([L(0, "A0", 0), L(1, "A1", 0)],
         []),
        ([R(0, "a0", 0), R(1, "a1", 0)],
         [(0, "A0+a0", 0), (1, "A1+a1", 0)]),
        ([L(0, "B0", 1000), L(1, "B1", 1001), L(2, "B2", 1002), L(3, "B3", 1003)],
         []),
        ([R(0, "b0", 1100), R(1, "b1", 1100), R(2, "b2", 1100), R(3, "b3", 1100)],
         [(0, "B0+b0", 1100), (1, "B1+b1", 1100), (2, "B2+b2", 1100), (3, "B3+b3", 1100)]),
        ([R(0, "c0", 1101), R(1, "c1", 1101), R(2, "c2", 1101), R(3, "c3", 1101)],
         [(1, "B1+c1", 1101), (2, "B2+c2", 1101), (3, "B3+c3", 1101)]),
        ([R(0, "d0", 1102), R(1, "d1", 1102), R(2, "d2", 1102), R(3, "d3", 1102)],
         [(2, "B2+d2", 1102), (3, "B3+d3", 1102)]),
        ([R(0, "e0", 1103), R(1, "e1", 1103), R(2, "e2", 1103), R(3, "e3", 1103)],
         [(3, "B3+e3", 1103)]),
        ([R(0, "f0", 1104), R(1, "f1", 1104), R(2, "f2", 1104), R(3, "f3", 1104)],
         []),
        ([R(0, "g0", 899), R(1, "g1", 899), R(2, "g2", 899), R(3, "g3", 899)],
         []),
        ([R(0, "h0", 900), R(1, "h1", 900), R(2, "h2", 900), R(3, "h3", 900)],
         [(0, "B0+h0", 1000)]),
        ([R(0, "i0", 901), R(1, "i1", 901), R(2, "i2", 901), R(3, "i3", 901)],
         [(0, "B0+i0", 1000), (1, "B1+i1", 1001)]),
        ([R(0, "j0", 902), R(1, "j1", 902), R(2, "j2", 902), R(3, "j3", 902)],
         [(0, "B0+j0", 1000), (1, "B1+j1", 1001), (2, "B2+j2", 1002)]),
        ([R(0, "k0", 903), R(1, "k1", 903), R(2, "k2", 903), R(3, "k3", 903)],
         [(0, "B0+k0", 1000), (1, "B1+k1", 1001), (2, "B2+k2", 1002), (3, "B3+k3", 1003)]),
        ([R(0, "l0", 2000), R(1, "l1", 2001), R(2, "l2", 2002), R(3, "l3", 2003)],
         []),
        ([L(0, "C0", 2100), L(1, "C1", 2100), L(2, "C2", 2100), L(3, "C3", 2100)],
         [(0, "C0+l0", 2100), (1, "C1+l1", 2100), (2, "C2+l2", 2100), (3, "C3+l3", 2100)]),
        ([L(0, "D0", 2101), L(1, "D1", 2101), L(2, "D2", 2101), L(3, "D3", 2101)],
         [(1, "D1+l1", 2101), (2, "D2+l2", 2101), (3, "D3+l3", 2101)]),
        ([L(0, "E0", 2102), L(1, "E1", 2102), L(2, "E2", 2102), L(3, "E3", 2102)],
         [(2, "E2+l2", 2102), (3, "E3+l3", 2102)]),
        ([L(0, "F0", 2103), L(1, "F1", 2103), L(2, "F2", 2103), L(3, "F3", 2103)],
         [(3, "F3+l3", 2103)]),
        ([L(0, "G0", 2104), L(1, "G1", 2104), L(2, "G2", 2104), L(3, "G3", 2104)],
         []),
        ([L(0, "H0", 1899), L(1, "H1", 1899), L(2, "H2", 1899), L(3, "H3", 1899)],
         []),
        ([L(0, "I0", 1900), L(1, "I1", 1900), L(2, "I2", 1900), L(3, "I3", 1900)],
         [(0, "I0+l0", 2000)]),
        ([L(0, "J0", 1901), L(1, "J1", 1901), L(2, "J2", 1901), L(3, "J3", 1901)],
         [(0, "J0+l0", 2000), (1, "J1+l1", 2001)]),
        ([L(0, "K0", 1902), L(1, "K1", 1902), L(2, "K2", 1902), L(3, "K3", 1902)],
         [(0, "K0+l0", 2000), (1, "K1+l1", 2001), (2, "K2+l2", 2002)]),
        ([L(0, "L0", 1903), L(1, "L1", 1903), L(2, "L2", 1903), L(3, "L3", 1903)],
         [(0, "L0+l0", 2000), (1, "L1+l1", 2001), (2, "L2+l2", 2002), (3, "L3+l3", 2003)]),
    ]),
    JoinCase(
        "KStreamKStreamJoinTest.testAsymmetricWindowingAfter",
        "inner", JoinWindows(0, 100, 0), same=True, steps=[
        ([L(0, "A0", 1000), L(1, "A1", 1001), L(2, "A2", 1002), L(3, "A3", 1003)],
         []),
        ([R(0, "a0", 999), R(1, "a1", 999), R(2, "a2", 999), R(3, "a3", 999)],
         []),
        ([R(0, "b0", 1000), R(1, "b1", 1000), R(2, "b2", 1000), R(3, "b3", 1000)],
         [(0, "A0+b0", 1000)]),
        ([R(0, "c0", 1001), R(1, "c1", 1001), R(2, "c2", 1001), R(3, "c3", 1001)],
         [(0, "A0+c0", 1001), (1, "A1+c1", 1001)]),
        ([R(0, "d0", 1002), R(1, "d1", 1002), R(2, "d2", 1002), R(3, "d3", 1002)],
         [(0, "A0+d0", 1002), (1, "A1+d1", 1002), (2, "A2+d2", 1002)]),
        ([R(0, "e0", 1003), R(1, "e1", 1003), R(2, "e2", 1003), R(3, "e3", 1003)],
         [(0, "A0+e0", 1003), (1, "A1+e1", 1003), (2, "A2+e2", 1003), (3, "A3+e3", 1003)]),
        ([R(0, "f0", 1100), R(1, "f1", 1100), R(2, "f2", 1100), R(3, "f3", 1100)],
         [(0, "A0+f0", 1100), (1, "A1+f1", 1100), (2, "A2+f2", 1100), (3, "A3+f3", 1100)]),
        ([R(0, "g0", 1101), R(1, "g1", 1101), R(2, "g2", 1101), R(3, "g3", 1101)],
         [(1, "A1+g1", 1101), (2, "A2+g2", 1101), (3, "A3+g3", 1101)]),
        ([R(0, "h0", 1102), R(1, "h1", 1102), R(2, "h2", 1102), R(3, "h3", 1102)],
         [(2, "A2+h2", 1102), (3, "A3+h3", 1102)]),
        ([R(0, "i0", 1103), R(1, "i1", 1103), R(2, "i2", 1103), R(3, "i3", 1103)],
         [(3, "A3+i3", 1103)]),
        ([R(0, "j0", 1104), R(1, "j1", 1104), R(2, "j2", 1104), R(3, "j3", 1104)],
         []),
    ]),
    JoinCase(
        "KStreamKStreamJoinTest.testAsymmetricWindowingBefore",
        "inner", JoinWindows(100, 0, 0), same=True, steps=[
        ([L(0, "A0", 1000), L(1, "A1", 1001), L(2, "A2", 1002), L(3, "A3", 1003)],
         []),
        ([R(0, "a0", 899), R(1, "a1", 899), R(2, "a2", 899), R(3, "a3", 899)],
         []),
        ([R(0, "b0", 900), R(1, "b1", 900), R(2, "b2", 900), R(3, "b3", 900)],
         [(0, "A0+b0", 1000)]),
        ([R(0, "c0", 901), R(1, "c1", 901), R(2, "c2", 901), R(3, "c3", 901)],
         [(0, "A0+c0", 1000), (1, "A1+c1", 1001)]),
        ([R(0, "d0", 902), R(1, "d1", 902), R(2, "d2", 902), R(3, "d3", 902)],
         [(0, "A0+d0", 1000), (1, "A1+d1", 1001), (2, "A2+d2", 1002)]),
        ([R(0, "e0", 903), R(1, "e1", 903), R(2, "e2", 903), R(3, "e3", 903)],
         [(0, "A0+e0", 1000), (1, "A1+e1", 1001), (2, "A2+e2", 1002), (3, "A3+e3", 1003)]),
        ([R(0, "f0", 1000), R(1, "f1", 1000), R(2, "f2", 1000), R(3, "f3", 1000)],
         [(0, "A0+f0", 1000), (1, "A1+f1", 1001), (2, "A2+f2", 1002), (3, "A3+f3", 1003)]),
        ([R(0, "g0", 1001), R(1, "g1", 1001), R(2, "g2", 1001), R(3, "g3", 1001)],
         [(1, "A1+g1", 1001), (2, "A2+g2", 1002), (3, "A3+g3", 1003)]),
        ([R(0, "h0", 1002), R(1, "h1", 1002), R(2, "h2", 1002), R(3, "h3", 1002)],
         [(2, "A2+h2", 1002), (3, "A3+h3", 1003)]),
        ([R(0, "i0", 1003), R(1, "i1", 1003), R(2, "i2", 1003), R(3, "i3", 1003)],
         [(3, "A3+i3", 1003)]),
        ([R(0, "j0", 1004), R(1, "j1", 1004), R(2, "j2", 1004), R(3, "j3", 1004)],
         []),
    ]),
    JoinCase(
        "KStreamKStreamLeftJoinTest.testLeftJoinDuplicates",
        "left", JoinWindows(100, 100, 10), same=True, steps=[
        ([L(0, "A0", 0), L(0, "A0-0", 0), R(1, "a0", 111), R(2, "dummy", 500)],
         [(0, "A0+null", 0), (0, "A0-0+null", 0)]),
        ([L(2, "A2", 1000), L(2, "A2-0", 1000), R(2, "a2", 1001)],
         [(2, "A2+a2", 1001), (2, "A2-0+a2", 1001)]),
        ([R(3, "a3", 315)],
         []),
    ]),
    JoinCase(
        "KStreamKStreamLeftJoinTest.testLeftExpiredNonJoinedRecordsAreEmittedByTheLeftProcessor",
        "left", JoinWindows(100, 100, 0), same=False, steps=[
        ([L(0, "A0", 1), L(1, "A1", 2), L(0, "A0-0", 3)],
         []),
        ([R(1, "a1", 3)],
         [(1, "A1+a1", 3)]),
        ([L(2, "dummy", 401)],
         [(0, "A0+null", 1), (0, "A0-0+null", 3)]),
        ([R(2, "dummy", 401)],
         [(2, "dummy+dummy", 401)]),
    ]),
    JoinCase(
        "KStreamKStreamLeftJoinTest.testLeftExpiredNonJoinedRecordsAreEmittedByTheRightProcessor",
        "left", JoinWindows(100, 100, 0), same=True, steps=[
        ([L(0, "A0", 1), L(1, "A1", 2), L(0, "A0-0", 3)],
         []),
        ([R(1, "a1", 3)],
         [(1, "A1+a1", 3)]),
        ([R(2, "dummy", 401)],
         [(0, "A0+null", 1), (0, "A0-0+null", 3)]),
        ([L(2, "dummy", 402)],
         [(2, "dummy+dummy", 402)]),
    ]),
    JoinCase(
        "KStreamKStreamLeftJoinTest.testRightNonJoinedRecordsAreNeverEmittedByTheLeftProcessor",
        "left", JoinWindows(100, 100, 0), same=True, steps=[
        ([R(0, "A0", 1), R(1, "A1", 2), R(0, "A0-0", 3)],
         []),
        ([L(1, "a1", 3)],
         [(1, "a1+A1", 3)]),
        ([L(2, "dummy", 401)],
         []),
        ([R(2, "dummy", 402)],
         [(2, "dummy+dummy", 402)]),
    ]),
    JoinCase(
        "KStreamKStreamLeftJoinTest.testRightNonJoinedRecordsAreNeverEmittedByTheRightProcessor",
        "left", JoinWindows(100, 100, 0), same=True, steps=[
        ([R(0, "A0", 1), R(1, "A1", 2), R(0, "A0-0", 3)],
         []),
        ([L(1, "a1", 3)],
         [(1, "a1+A1", 3)]),
        ([R(2, "dummy", 401)],
         []),
        ([L(2, "dummy", 402)],
         [(2, "dummy+dummy", 402)]),
    ]),
    JoinCase(
        "KStreamKStreamLeftJoinTest.testLeftJoinedRecordsWithZeroAfterAreEmitted",
        "left", JoinWindows(100, 0, 0), same=False, steps=[
        ([L(0, "A0", 1000), L(1, "A1", 1001), L(2, "A2", 1002), L(3, "A3", 1003)],
         [(0, "A0+null", 1000), (1, "A1+null", 1001), (2, "A2+null", 1002)]),
        ([R(0, "a0", 999), R(1, "a1", 999), R(2, "a2", 999), R(3, "a3", 999)],
         [(0, "A0+a0", 1000), (1, "A1+a1", 1001), (2, "A2+a2", 1002), (3, "A3+a3", 1003)]),
        ([R(0, "b0", 1000), R(1, "b1", 1000), R(2, "b2", 1000), R(3, "b3", 1000)],
         [(0, "A0+b0", 1000), (1, "A1+b1", 1001), (2, "A2+b2", 1002), (3, "A3+b3", 1003)]),
        ([R(0, "c0", 1001), R(1, "c1", 1001), R(2, "c2", 1001), R(3, "c3", 1001)],
         [(1, "A1+c1", 1001), (2, "A2+c2", 1002), (3, "A3+c3", 1003)]),
        ([R(0, "d0", 1002), R(1, "d1", 1002), R(2, "d2", 1002), R(3, "d3", 1002)],
         [(2, "A2+d2", 1002), (3, "A3+d3", 1003)]),
        ([R(0, "e0", 1003), R(1, "e1", 1003), R(2, "e2", 1003), R(3, "e3", 1003)],
         [(3, "A3+e3", 1003)]),
        ([R(0, "f0", 1100), R(1, "f1", 1100), R(2, "f2", 1100), R(3, "f3", 1100)],
         []),
    ]),
    JoinCase(
        "KStreamKStreamLeftJoinTest.testLeftJoinWithDefaultSuppliers",
        "left", JoinWindows(100, 100, 0), same=True, steps=[
        ([L(0, "A0", 0), L(1, "A1", 0)],
         []),
        ([R(0, "a0", 0), R(1, "a1", 0)],
         [(0, "A0+a0", 0), (1, "A1+a1", 0)]),
        ([L(0, "B0", 0), L(1, "B1", 0), L(2, "B2", 0)],
         [(0, "B0+a0", 0), (1, "B1+a1", 0)]),
        ([R(0, "b0", 0), R(1, "b1", 0), R(2, "b2", 0), R(3, "b3", 0)],
         [(0, "A0+b0", 0), (0, "B0+b0", 0), (1, "A1+b1", 0), (1, "B1+b1", 0), (2, "B2+b2", 0)]),
        ([L(0, "C0", 0), L(1, "C1", 0), L(2, "C2", 0), L(3, "C3", 0)],
         [(0, "C0+a0", 0), (0, "C0+b0", 0), (1, "C1+a1", 0), (1, "C1+b1", 0), (2, "C2+b2", 0),
          (3, "C3+b3", 0)]),
        ([L(0, "dummy", 1000)],
         []),
    ]),
    JoinCase(
        "KStreamKStreamLeftJoinTest.testOrdering",
        "left", JoinWindows(100, 100, 0), same=True, steps=[
        ([L(0, "A0", 0), L(1, "A1", 100)],
         []),
        ([R(1, "a1", 110)],
         [(0, "A0+null", 0), (1, "A1+a1", 110)]),
    ]),
    JoinCase(
        "KStreamKStreamLeftJoinTest.testGracePeriod",
        "left", JoinWindows(100, 100, 10), same=True, steps=[
        ([L(0, "A0", 0), L(1, "A1", 0)],
         []),
        ([R(0, "a0", 101), R(1, "a1", 101), R(2, "a2", 101), R(3, "a3", 101)],
         []),
        ([R(0, "dummy", 1201)],
         [(0, "A0+null", 0), (1, "A1+null", 0)]),
    ]),
    JoinCase(
        "KStreamKStreamLeftJoinTest.testWindowing",
        "left", JoinWindows(100, 100, 0), same=False, steps=[
        ([L(0, "A0", 0), L(1, "A1", 0)],
         []),
        ([R(0, "a0", 0), R(1, "a1", 0), R(2, "a2", 0), R(3, "a3", 0)],
         [(0, "A0+a0", 0), (1, "A1+a1", 0)]),
        ([R(0, "b0", 1000), R(1, "b1", 1001), R(2, "b2", 1002), R(3, "b3", 1003)],
         []),
        ([L(0, "B0", 1100), L(1, "B1", 1100), L(2, "B2", 1100), L(3, "B3", 1100)],
         [(0, "B0+b0", 1100), (1, "B1+b1", 1100), (2, "B2+b2", 1100), (3, "B3+b3", 1100)]),
        ([L(0, "C0", 1101), L(1, "C1", 1101), L(2, "C2", 1101), L(3, "C3", 1101)],
         [(1, "C1+b1", 1101), (2, "C2+b2", 1101), (3, "C3+b3", 1101)]),
        ([L(0, "D0", 1102), L(1, "D1", 1102), L(2, "D2", 1102), L(3, "D3", 1102)],
         [(2, "D2+b2", 1102), (3, "D3+b3", 1102)]),
        ([L(0, "E0", 1103), L(1, "E1", 1103), L(2, "E2", 1103), L(3, "E3", 1103)],
         [(3, "E3+b3", 1103)]),
        ([L(0, "F0", 1104), L(1, "F1", 1104), L(2, "F2", 1104), L(3, "F3", 1104)],
         []),
        ([L(0, "dummy", 1405)],
         [(0, "C0+null", 1101), (0, "D0+null", 1102), (1, "D1+null", 1102), (0, "E0+null", 1103),
          (1, "E1+null", 1103), (2, "E2+null", 1103), (0, "F0+null", 1104), (1, "F1+null", 1104),
          (2, "F2+null", 1104), (3, "F3+null", 1104)]),
        ([L(0, "G0", 899), L(1, "G1", 899), L(2, "G2", 899), L(3, "G3", 899)],
         [(0, "G0+null", 899), (1, "G1+null", 899), (2, "G2+null", 899), (3, "G3+null", 899)]),
        ([L(0, "H0", 900), L(1, "H1", 900), L(2, "H2", 900), L(3, "H3", 900)],
         [(0, "H0+b0", 1000), (1, "H1+null", 900), (2, "H2+null", 900), (3, "H3+null", 900)]),
        ([L(0, "I0", 901), L(1, "I1", 901), L(2, "I2", 901), L(3, "I3", 901)],
         [(0, "I0+b0", 1000), (1, "I1+b1", 1001), (2, "I2+null", 901), (3, "I3+null", 901)]),
        ([L(0, "J0", 902), L(1, "J1", 902), L(2, "J2", 902), L(3, "J3", 902)],
         [(0, "J0+b0", 1000), (1, "J1+b1", 1001), (2, "J2+b2", 1002), (3, "J3+null", 902)]),
        ([L(0, "K0", 903), L(1, "K1", 903), L(2, "K2", 903), L(3, "K3", 903)],
         [(0, "K0+b0", 1000), (1, "K1+b1", 1001), (2, "K2+b2", 1002), (3, "K3+b3", 1003)]),
        ([L(0, "dummy", 1203)],
         [(0, "dummy+null", 1203)]),
    ]),
    JoinCase(
        "KStreamKStreamLeftJoinTest.shouldNotEmitLeftJoinResultForAsymmetricWindow",
        "left", JoinWindows(0, 100, 0), same=True, steps=[
        ([L(0, "A0", 0), L(1, "A1", 1)],
         []),
        ([R(0, "a0", 100)],
         [(0, "A0+a0", 100)]),
        ([R(1, "a1", 102)],
         [(1, "A1+null", 1)]),
    ]),
    JoinCase(
        "KStreamKStreamOuterJoinTest.testOuterJoinDuplicates",
        "outer", JoinWindows(100, 100, 10), same=False, steps=[
        ([L(0, "A0", 0), L(0, "A0-0", 0), R(1, 11, 0), R(1, 12, 0), R(1, 10, 111), R(3, 100, 211)],
         [(1, "null+11", 0), (1, "null+12", 0), (0, "A0+null", 0), (0, "A0-0+null", 0)]),
        ([L(2, "A2", 200), L(2, "A2-0", 200), R(2, 13, 201), R(2, 14, 201)],
         [(2, "A2+13", 201), (2, "A2-0+13", 201), (2, "A2+14", 201), (2, "A2-0+14", 201)]),
        ([R(3, 100, 1500)],
         [(1, "null+10", 111), (3, "null+100", 211)]),
    ]),
    JoinCase(
        "KStreamKStreamOuterJoinTest.testLeftExpiredNonJoinedRecordsAreEmittedByTheLeftProcessor",
        "outer", JoinWindows(100, 100, 0), same=False, steps=[
        ([L(0, "A0", 1), L(1, "A1", 2), L(0, "A0-0", 3)],
         []),
        ([R(1, 11, 3)],
         [(1, "A1+11", 3)]),
        ([L(2, "dummy", 401)],
         [(0, "A0+null", 1), (0, "A0-0+null", 3)]),
        ([R(2, 100, 401)],
         [(2, "dummy+100", 401)]),
    ]),
    JoinCase(
        "KStreamKStreamOuterJoinTest.testLeftExpiredNonJoinedRecordsAreEmittedByTheRightProcessor",
        "outer", JoinWindows(100, 100, 0), same=True, steps=[
        ([L(0, "A0", 1), L(1, "A1", 2), L(0, "A0-0", 3)],
         []),
        ([R(1, 11, 3)],
         [(1, "A1+11", 3)]),
        ([R(2, 100, 401)],
         [(0, "A0+null", 1), (0, "A0-0+null", 3)]),
        ([L(2, "dummy", 402)],
         [(2, "dummy+100", 402)]),
    ]),
    JoinCase(
        "KStreamKStreamOuterJoinTest.testRightExpiredNonJoinedRecordsAreEmittedByTheLeftProcessor",
        "outer", JoinWindows(100, 100, 0), same=True, steps=[
        ([R(0, 10, 1), R(1, 11, 2), R(0, 12, 3)],
         []),
        ([L(1, "A1", 3)],
         [(1, "A1+11", 3)]),
        ([L(2, "dummy", 401)],
         [(0, "null+10", 1), (0, "null+12", 3)]),
        ([R(2, 100, 402)],
         [(2, "dummy+100", 402)]),
    ]),
    JoinCase(
        "KStreamKStreamOuterJoinTest.testRightExpiredNonJoinedRecordsAreEmittedByTheRightProcessor",
        "outer", JoinWindows(100, 100, 0), same=False, steps=[
        ([R(0, 10, 1), R(1, 11, 2), R(0, 12, 3)],
         []),
        ([L(1, "A1", 3)],
         [(1, "A1+11", 3)]),
        ([R(2, 100, 401)],
         [(0, "null+10", 1), (0, "null+12", 3)]),
        ([L(2, "dummy", 402)],
         [(2, "dummy+100", 402)]),
    ]),
    JoinCase(
        "KStreamKStreamOuterJoinTest.testOrdering",
        "outer", JoinWindows(100, 100, 0), same=True, steps=[
        ([L(0, "A0", 0), L(1, "A1", 100)],
         []),
        ([R(1, 11, 110)],
         [(0, "A0+null", 0), (1, "A1+11", 110)]),
    ]),
    JoinCase(
        "KStreamKStreamOuterJoinTest.testGracePeriod",
        "outer", JoinWindows(100, 100, 10), same=False, steps=[
        ([L(0, "A0", 0), R(1, 11, 0)],
         []),
        ([L(1, "A1", 101), R(0, 10, 101)],
         []),
        ([R(0, 100, 112)],
         [(1, "null+11", 0), (0, "A0+null", 0)]),
    ]),
    JoinCase(
        "KStreamKStreamOuterJoinTest.testEmitAllNonJoinedResultsForAsymmetricWindow",
        "outer", JoinWindows(5, 20, 0), same=False, steps=[
        ([L(0, "A0", 29)],
         []),
        ([L(1, "A1", 30)],
         []),
        ([R(2, 12, 31)],
         []),
        ([R(3, 13, 36)],
         []),
        ([R(4, 14, 37)],
         [(2, "null+12", 31)]),
        ([R(5, 15, 50)],
         [(0, "A0+null", 29), (3, "null+13", 36), (4, "null+14", 37)]),
    ]),
    JoinCase(
        "KStreamKStreamOuterJoinTest.testOuterJoinWithDefaultSuppliers",
        "outer", JoinWindows(100, 100, 0), same=True, steps=[
        ([L(0, "A0", 0), L(1, "A1", 0)],
         []),
        ([R(0, 10, 0), R(1, 11, 0)],
         [(0, "A0+10", 0), (1, "A1+11", 0)]),
        ([L(0, "B0", 0), L(1, "B1", 0), L(2, "B2", 0)],
         [(0, "B0+10", 0), (1, "B1+11", 0)]),
        ([R(0, 20, 0), R(1, 21, 0), R(2, 22, 0), R(3, 23, 0)],
         [(0, "A0+20", 0), (0, "B0+20", 0), (1, "A1+21", 0), (1, "B1+21", 0), (2, "B2+22", 0)]),
        ([L(0, "C0", 0), L(1, "C1", 0), L(2, "C2", 0), L(3, "C3", 0)],
         [(0, "C0+10", 0), (0, "C0+20", 0), (1, "C1+11", 0), (1, "C1+21", 0), (2, "C2+22", 0),
          (3, "C3+23", 0)]),
        ([L(0, "dummy", 400)],
         []),
    ]),
    JoinCase(
        "KStreamKStreamOuterJoinTest.testWindowing",
        "outer", JoinWindows(100, 100, 0), same=False, steps=[
        ([L(0, "A0", 0), L(1, "A1", 0)],
         []),
        ([R(0, 10, 0), R(1, 11, 0), R(2, 12, 0), R(3, 13, 0)],
         [(0, "A0+10", 0), (1, "A1+11", 0)]),
        ([R(0, 20, 1000), R(1, 21, 1001), R(2, 22, 1002), R(3, 23, 1003)],
         [(2, "null+12", 0), (3, "null+13", 0)]),
        ([L(0, "B0", 1100), L(1, "B1", 1100), L(2, "B2", 1100), L(3, "B3", 1100)],
         [(0, "B0+20", 1100), (1, "B1+21", 1100), (2, "B2+22", 1100), (3, "B3+23", 1100)]),
        ([L(0, "C0", 1101), L(1, "C1", 1101), L(2, "C2", 1101), L(3, "C3", 1101)],
         [(1, "C1+21", 1101), (2, "C2+22", 1101), (3, "C3+23", 1101)]),
        ([L(0, "D0", 1102), L(1, "D1", 1102), L(2, "D2", 1102), L(3, "D3", 1102)],
         [(2, "D2+22", 1102), (3, "D3+23", 1102)]),
        ([L(0, "E0", 1103), L(1, "E1", 1103), L(2, "E2", 1103), L(3, "E3", 1103)],
         [(3, "E3+23", 1103)]),
        ([L(0, "F0", 1104), L(1, "F1", 1104), L(2, "F2", 1104), L(3, "F3", 1104)],
         []),
        ([L(0, "dummy", 1405)],
         [(0, "C0+null", 1101), (0, "D0+null", 1102), (1, "D1+null", 1102), (0, "E0+null", 1103),
          (1, "E1+null", 1103), (2, "E2+null", 1103), (0, "F0+null", 1104), (1, "F1+null", 1104),
          (2, "F2+null", 1104), (3, "F3+null", 1104)]),
        ([L(0, "G0", 899), L(1, "G1", 899), L(2, "G2", 899), L(3, "G3", 899)],
         [(0, "G0+null", 899), (1, "G1+null", 899), (2, "G2+null", 899), (3, "G3+null", 899)]),
        ([L(0, "H0", 900), L(1, "H1", 900), L(2, "H2", 900), L(3, "H3", 900)],
         [(0, "H0+20", 1000), (1, "H1+null", 900), (2, "H2+null", 900), (3, "H3+null", 900)]),
        ([L(0, "I0", 901), L(1, "I1", 901), L(2, "I2", 901), L(3, "I3", 901)],
         [(0, "I0+20", 1000), (1, "I1+21", 1001), (2, "I2+null", 901), (3, "I3+null", 901)]),
        ([L(0, "J0", 902), L(1, "J1", 902), L(2, "J2", 902), L(3, "J3", 902)],
         [(0, "J0+20", 1000), (1, "J1+21", 1001), (2, "J2+22", 1002), (3, "J3+null", 902)]),
        ([L(0, "K0", 903), L(1, "K1", 903), L(2, "K2", 903), L(3, "K3", 903)],
         [(0, "K0+20", 1000), (1, "K1+21", 1001), (2, "K2+22", 1002), (3, "K3+23", 1003)]),
        ([L(0, "dummy", 1103)],
         [(0, "dummy+null", 1103)]),
    ]),
    JoinCase(
        "KStreamKStreamOuterJoinTest.testShouldNotEmitLeftJoinResultForAsymmetricBeforeWindow",
        "outer", JoinWindows(0, 100, 0), same=False, steps=[
        ([L(0, "A0", 0), L(1, "A1", 1)],
         []),
        ([R(0, 10, 100)],
         [(0, "A0+10", 100)]),
        ([R(1, 11, 102)],
         [(1, "A1+null", 1)]),
        ([R(2, 12, 103)],
         [(1, "null+11", 102)]),
        ([L(2, "A2", 103)],
         [(2, "A2+12", 103)]),
    ]),
    JoinCase(
        "KStreamKStreamOuterJoinTest.testShouldNotEmitLeftJoinResultForAsymmetricAfterWindow",
        "outer", JoinWindows(100, 0, 0), same=False, steps=[
        ([L(0, "A0", 0), L(1, "A1", 1)],
         [(0, "A0+null", 0)]),
        ([R(1, 11, 1)],
         [(1, "A1+11", 1)]),
        ([R(2, 12, 101)],
         []),
        ([R(3, 13, 101)],
         []),
        ([L(2, "A2", 201)],
         [(2, "A2+12", 201)]),
    ]),
]


@pytest.mark.parametrize("case", JOIN_CASES, ids=lambda c: c.kafka_test)
def test_kafka_semantics_give_kafka_streams_records(case):
    run_join(case, "kafka")


@pytest.mark.parametrize("case", [c for c in JOIN_CASES if c.same], ids=lambda c: c.kafka_test)
def test_default_semantics_give_kafka_streams_records(case):
    run_join(case, "streamkit")


def test_every_transcribed_case_names_its_kafka_test():
    names = [c.kafka_test for c in JOIN_CASES]
    assert len(names) == len(set(names)) == 28
    assert all(n.split(".")[0] in ("KStreamKStreamJoinTest", "KStreamKStreamLeftJoinTest",
                                   "KStreamKStreamOuterJoinTest") for n in names)


# --------------------------------------------------------------------------- differences
# Each asserts streamkit's default (documented) behaviour on the input of the Kafka test it
# departs from; the expected records follow from docs/joins.md, not from Kafka's test.

def _steps(case_name: str) -> list:
    return next(c.steps for c in JOIN_CASES if c.kafka_test == case_name)


def test_difference_a_record_past_grace_joins_nothing():
    """Departs from KStreamKStreamJoinTest.testWindowing: there, right records up to 204 ms
    behind the right stream time (grace 0) still join the buffered left records."""
    steps = _steps("KStreamKStreamJoinTest.testWindowing")
    with TopologyTestDriver(join_topology("inner", JoinWindows(100, 100, 0), "streamkit")) as d:
        run_steps(d, steps[:8], joined, "the records in order")  # as in Kafka
        # g0..k3 (899..903) are late for the right stream time 1104: each goes to the
        # late-events topic and joins nothing.
        run_steps(d, [(records, []) for records, _ in steps[8:13]], joined, "late records")
        assert d.late_records == 20


def test_difference_each_input_closes_the_other_inputs_windows():
    """Departs from KStreamKStreamLeftJoinTest.testLeftExpiredNonJoinedRecordsAreEmittedByTheLeftProcessor:
    there, a left record moves the shared stream time and emits the left null results; in
    streamkit only the right input's stream time closes a left record's window."""
    steps = [
        ([L(0, "A0", 1), L(1, "A1", 2), L(0, "A0-0", 3)], []),
        ([R(1, "a1", 3)], [(1, "A1+a1", 3)]),
        ([L(2, "dummy", 401)], []),  # the right stream time is still 3
        ([R(2, "dummy", 401)],       # closes A0 and A0-0 (1 + 100 < 401), then joins
         [(0, "A0+null", 1), (0, "A0-0+null", 3), (2, "dummy+dummy", 401)]),
    ]
    with TopologyTestDriver(join_topology("left", JoinWindows(100, 100, 0), "streamkit")) as d:
        run_steps(d, steps, joined, "per-input stream time")


def test_difference_no_null_result_before_a_match():
    """Departs from KStreamKStreamLeftJoinTest.testLeftJoinedRecordsWithZeroAfterAreEmitted:
    there A0, A1 and A2 are emitted with null, then joined by the right records at 999..1002
    (within retention, out of order); streamkit emits a null result only once no record that
    is not late can join, so here only the matches."""
    steps = _steps("KStreamKStreamLeftJoinTest.testLeftJoinedRecordsWithZeroAfterAreEmitted")
    first, later = steps[0], steps[1:]
    assert first[1] == [(0, "A0+null", 1000), (1, "A1+null", 1001), (2, "A2+null", 1002)]
    with TopologyTestDriver(join_topology("left", JoinWindows(100, 0, 0), "streamkit")) as d:
        run_steps(d, [(first[0], [])] + later, joined, "no early null results")


def test_difference_a_record_without_a_key_goes_to_dead_letters():
    """Departs from KStreamKStreamJoin in left and outer joins, which emit
    joiner(value, null) for a record with a null key: streamkit sends bad input to dead
    letters, in either semantics."""
    for semantics in ("streamkit", "kafka"):
        topo = join_topology("outer", JoinWindows(100, 100, 0), semantics)
        with TopologyTestDriver(topo, on_error="continue") as d:
            d.pipe("left", None, "A0", 0)
            assert joined(d) == []
            [dead] = d.read_output(d.dead_letter_topic)
            assert b"needs a record key" in dead.headers["streamkit.error"]


# --------------------------------------------------------------------------- stream-table
# KStreamKTableJoinTest: stream(streamTopic).join(table(tableTopic), TOSTRING_JOINER).
# pushToStream(n, p) pipes keys 0..n-1 with values p + key at timestamps 0..n-1;
# pushToTable(n, p) pipes them to the table (the Kafka test picks random timestamps, which a
# stream-table join does not read: 0 here); pushNullValueToTable deletes keys 0 and 1.

def _stream(n: int, prefix: str) -> list:
    return [("streamTopic", k, f"{prefix}{k}", k) for k in range(n)]


def _table(n: int, prefix: str) -> list:
    return [("tableTopic", k, f"{prefix}{k}", 0) for k in range(n)]


TABLE_CASES = {
    "KStreamKTableJoinTest.shouldNotJoinWithEmptyTableOnStreamUpdates": [
        (_stream(2, "X"), []),
    ],
    "KStreamKTableJoinTest.shouldNotJoinOnTableUpdates": [
        (_stream(2, "X"), []),
        (_table(2, "Y"), []),
        (_stream(4, "X"), [(0, "X0+Y0", 0), (1, "X1+Y1", 1)]),
        (_table(4, "YY"), []),
        (_stream(4, "X"), [(0, "X0+YY0", 0), (1, "X1+YY1", 1), (2, "X2+YY2", 2), (3, "X3+YY3", 3)]),
        (_table(4, "YYY"), []),
    ],
    "KStreamKTableJoinTest.shouldJoinOnlyIfMatchFoundOnStreamUpdates": [
        (_table(2, "Y"), []),
        (_stream(4, "X"), [(0, "X0+Y0", 0), (1, "X1+Y1", 1)]),
    ],
    "KStreamKTableJoinTest.shouldClearTableEntryOnNullValueUpdates": [
        (_table(4, "Y"), []),
        (_stream(4, "X"), [(0, "X0+Y0", 0), (1, "X1+Y1", 1), (2, "X2+Y2", 2), (3, "X3+Y3", 3)]),
        ([("tableTopic", 0, None, 0), ("tableTopic", 1, None, 0)], []),
        (_stream(4, "XX"), [(2, "XX2+Y2", 2), (3, "XX3+Y3", 3)]),
    ],
}


def stream_table_topology() -> Topology:
    topo = Topology("conformance")
    table = table_from_topic(topo, "table", "tableTopic", "int", "str")
    stream = source_stream(topo, "streamTopic", "int", "str", None, None)
    stream.join(table, tostring_joiner).to("out", values="str")
    return topo


@pytest.mark.parametrize("name", TABLE_CASES)
def test_stream_table_join_gives_kafka_streams_records(name):
    with TopologyTestDriver(stream_table_topology()) as d:
        run_steps(d, TABLE_CASES[name], joined, name)
