"""Non-windowed joins in the test driver: stream-table, stream-global-table, table-table and
foreign-key table-table. Every expected record is written here from Kafka Streams'
documented semantics (the Kafka Streams Join Semantics page of the Kafka wiki, and the
DSL's join documentation), not computed by streamkit."""
from __future__ import annotations

import pytest

import streamkit
from streamkit import Settings
from streamkit.testing import TopologyTestDriver


def new_app(name: str) -> streamkit.App:
    return streamkit.App(name, settings=Settings.from_env({}))


def pair(left, right) -> str:
    """The wiki's notation of a join result: "A - a", "A - null"."""
    return f"{'null' if left is None else left} - {'null' if right is None else right}"


def changes(driver, topic: str) -> list[tuple]:
    return [(r.key, r.value) for r in driver.read_output(topic)]


# --------------------------------------------------------------------------- table-table
# The wiki's KTable-KTable example: one key, records in timestamp order; "null" is a
# tombstone, "-" no output. STREAM_1 (left) 1:null 3:A 5:B 7:null 9:C 12:null 15:D;
# STREAM_2 (right) 2:null 4:a 6:b 8:null 10:c 11:null 13:null 14:d.
STEPS = [  # (side, value, inner, left, outer)
    ("left", None, "-", "-", "-"),
    ("right", None, "-", "-", "-"),
    ("left", "A", "-", "A - null", "A - null"),
    ("right", "a", "A - a", "A - a", "A - a"),
    ("left", "B", "B - a", "B - a", "B - a"),
    ("right", "b", "B - b", "B - b", "B - b"),
    ("left", None, None, None, "null - b"),
    ("right", None, "-", "-", None),
    ("left", "C", "-", "C - null", "C - null"),
    ("right", "c", "C - c", "C - c", "C - c"),
    ("right", None, None, "C - null", "C - null"),
    ("left", None, "-", None, None),
    ("right", None, "-", "-", "-"),
    ("right", "d", "-", "-", "null - d"),
    ("left", "D", "D - d", "D - d", "D - d"),
]


def table_table_app(how: str) -> streamkit.App:
    app = new_app(f"tt-{how}")
    left = app.table("left", topic="left-topic")
    right = app.table("right", topic="right-topic")
    left.join(right, "joined", pair, how=how).changes().to("joined-out")
    return app


@pytest.mark.parametrize("how", ["inner", "left", "outer"])
def test_table_table_join_gives_the_records_of_kafka_streams_join_semantics(how):
    column = {"inner": 2, "left": 3, "outer": 4}[how]
    with TopologyTestDriver(table_table_app(how), partitions=2) as driver:
        current = None  # the result table's row for the key, after each step
        for ts, step in enumerate(STEPS, start=1):
            side, value, want = step[0], step[1], step[column]
            driver.pipe(f"{side}-topic", "k", value, ts)
            got = changes(driver, "joined-out")
            assert got == ([] if want == "-" else [("k", want)]), (ts, side, value)
            if want != "-":
                current = want
            assert driver.table("joined") == ({} if current is None else {"k": current}), ts


def test_table_table_join_keeps_keys_apart_and_follows_each_side():
    with TopologyTestDriver(table_table_app("inner"), partitions=2) as driver:
        for key, value in [("k1", "A"), ("k2", "B"), ("k3", "C")]:
            driver.pipe("left-topic", key, value)
        driver.pipe("right-topic", "k2", "b")
        driver.pipe("right-topic", "k4", "d")      # no left value: no result
        assert driver.table("joined") == {"k2": "B - b"}
        driver.pipe("right-topic", "k1", "a")
        driver.pipe("left-topic", "k2", "B2")
        assert driver.table("joined") == {"k1": "A - a", "k2": "B2 - b"}
        driver.pipe("right-topic", "k1", None)     # a right-side delete ends the inner row
        assert driver.table("joined") == {"k2": "B2 - b"}


# --------------------------------------------------------------------------- stream-table
def stream_table_app(how: str) -> streamkit.App:
    app = new_app(f"st-{how}")
    levels = app.table("levels", topic="levels")                # key: customer id
    orders = app.source("orders")                               # key: customer id
    orders.join(levels, lambda o, lv: {**o, "level": lv}, how=how).to("enriched")
    return app


def test_stream_table_inner_join_joins_each_record_with_the_current_table_value():
    with TopologyTestDriver(stream_table_app("inner"), partitions=3) as driver:
        driver.pipe("orders", "c1", {"n": 1})                   # no table value: no output
        driver.pipe("levels", "c1", "gold")                     # a table update emits nothing
        assert changes(driver, "enriched") == []
        driver.pipe("orders", "c1", {"n": 2})
        driver.pipe("orders", "c2", {"n": 3})                   # c2 is not in the table
        driver.pipe("levels", "c1", "silver")
        driver.pipe("orders", "c1", {"n": 4})
        assert changes(driver, "enriched") == [("c1", {"n": 2, "level": "gold"}),
                                               ("c1", {"n": 4, "level": "silver"})]
        driver.pipe("levels", "c1", None)                       # deleted: c1 no longer joins
        driver.pipe("orders", "c1", {"n": 5})
        assert changes(driver, "enriched") == []


def test_stream_table_left_join_gives_none_for_a_missing_or_deleted_key():
    with TopologyTestDriver(stream_table_app("left"), partitions=3) as driver:
        driver.pipe("orders", "c1", {"n": 1})
        driver.pipe("levels", "c1", "gold")
        driver.pipe("orders", "c1", {"n": 2})
        driver.pipe("levels", "c1", None)
        driver.pipe("orders", "c1", {"n": 3})
        assert changes(driver, "enriched") == [("c1", {"n": 1, "level": None}),
                                               ("c1", {"n": 2, "level": "gold"}),
                                               ("c1", {"n": 3, "level": None})]


# --------------------------------------------------------------------- stream-global-table
def global_app(how: str) -> streamkit.App:
    app = new_app(f"gt-{how}")
    products = app.global_table("products", topic="products")  # key: product id
    orders = app.source("orders")                               # key: order id
    orders.join_global(products, key=lambda o: o.get("product"),
                       joiner=lambda o, p: {"order": o["id"], "price": p and p["price"]},
                       how=how).to("priced")
    return app


def test_global_table_left_join_looks_up_the_foreign_key_and_keeps_records_without_a_match():
    # The global topic has more partitions than the stream: every product is on every task.
    with TopologyTestDriver(global_app("left"), partitions={"products": 4, "*": 2}) as driver:
        driver.pipe("orders", "o1", {"id": "o1", "product": "p1"})   # p1 unknown yet
        for p in range(8):
            driver.pipe("products", f"p{p}", {"price": 10 + p})
        driver.pipe("orders", "o2", {"id": "o2", "product": "p1"})
        driver.pipe("orders", "o3", {"id": "o3", "product": "p7"})
        driver.pipe("orders", "o4", {"id": "o4"})                    # no foreign key at all
        driver.pipe("products", "p1", {"price": 99})
        driver.pipe("orders", "o5", {"id": "o5", "product": "p1"})
        driver.pipe("products", "p7", None)                          # deleted
        driver.pipe("orders", "o6", {"id": "o6", "product": "p7"})
        assert changes(driver, "priced") == [
            ("o1", {"order": "o1", "price": None}), ("o2", {"order": "o2", "price": 11}),
            ("o3", {"order": "o3", "price": 17}), ("o4", {"order": "o4", "price": None}),
            ("o5", {"order": "o5", "price": 99}), ("o6", {"order": "o6", "price": None})]
        assert driver.table("products") == {f"p{p}": {"price": 99 if p == 1 else 10 + p}
                                            for p in range(7)}


def test_global_table_inner_join_drops_records_without_a_match():
    with TopologyTestDriver(global_app("inner"), partitions={"products": 4, "*": 2}) as driver:
        driver.pipe("orders", "o1", {"id": "o1", "product": "p1"})
        driver.pipe("products", "p1", {"price": 5})
        driver.pipe("orders", "o2", {"id": "o2", "product": "p1"})
        driver.pipe("orders", "o3", {"id": "o3"})
        assert changes(driver, "priced") == [("o2", {"order": "o2", "price": 5})]


# ---------------------------------------------------------------------- foreign-key join
def foreign_app() -> streamkit.App:
    app = new_app("fk")
    customers = app.table("customers", topic="customers")       # key: customer id
    orders = app.table("orders", topic="orders")                # key: order id
    for how in ("inner", "left"):
        orders.join_foreign(customers, f"named-{how}", fk=lambda o: o["customer"], how=how,
                            joiner=lambda o, c: {"amount": o["amount"], "name": c and c["name"]})
    return app


def test_a_foreign_key_that_changes_to_an_unknown_key_removes_the_inner_row():
    with TopologyTestDriver(foreign_app(), partitions=2) as driver:
        driver.pipe("customers", "c1", {"name": "Ann"})
        driver.pipe("orders", "o1", {"customer": "c1", "amount": 5})
        driver.pipe("orders", "o2", {"customer": "c1", "amount": 7})
        assert driver.table("named-inner") == {"o1": {"amount": 5, "name": "Ann"},
                                               "o2": {"amount": 7, "name": "Ann"}}
        driver.pipe("orders", "o1", {"customer": "c9", "amount": 6})   # no customer c9
        assert driver.table("named-inner") == {"o2": {"amount": 7, "name": "Ann"}}
        assert driver.table("named-left") == {"o1": {"amount": 6, "name": None},
                                              "o2": {"amount": 7, "name": "Ann"}}
        # The old customer no longer reaches o1; the new one does once it exists.
        driver.pipe("customers", "c1", {"name": "Anna"})
        driver.pipe("customers", "c9", {"name": "Bo"})
        want = {"o1": {"amount": 6, "name": "Bo"}, "o2": {"amount": 7, "name": "Anna"}}
        assert driver.table("named-inner") == want
        assert driver.table("named-left") == want


def test_a_right_side_delete_removes_the_inner_rows_and_empties_the_left_rows():
    with TopologyTestDriver(foreign_app(), partitions=2) as driver:
        driver.pipe("customers", "c1", {"name": "Ann"})
        driver.pipe("customers", "c2", {"name": "Cy"})
        for o, c in [("o1", "c1"), ("o2", "c1"), ("o3", "c2")]:
            driver.pipe("orders", o, {"customer": c, "amount": 1})
        driver.pipe("customers", "c1", None)
        assert driver.table("named-inner") == {"o3": {"amount": 1, "name": "Cy"}}
        assert driver.table("named-left") == {"o1": {"amount": 1, "name": None},
                                              "o2": {"amount": 1, "name": None},
                                              "o3": {"amount": 1, "name": "Cy"}}
        driver.pipe("customers", "c1", {"name": "Ann again"})
        assert driver.table("named-inner")["o1"] == {"amount": 1, "name": "Ann again"}
        driver.pipe("orders", "o3", None)                              # a left-side delete
        assert "o3" not in driver.table("named-inner") and "o3" not in driver.table("named-left")


def test_a_left_table_of_raw_bytes_joins_by_its_foreign_key():
    # The digest that marks an answer as stale is taken from the bytes the left table
    # stores, so a left table of any serde can join.
    app = new_app("fk-raw")
    customers = app.table("customers", topic="customers")
    orders = app.table("orders", topic="orders", values="raw")  # value: the customer id
    orders.join_foreign(customers, "named", fk=lambda o: o.decode(),
                        joiner=lambda o, c: {"customer": o.decode(), "name": c["name"]})
    with TopologyTestDriver(app, partitions=2) as driver:
        driver.pipe("customers", "c1", {"name": "Ann"})
        driver.pipe("customers", "c2", {"name": "Bo"})
        driver.pipe("orders", "o1", b"c1")
        driver.pipe("orders", "o2", b"c2")
        driver.pipe("orders", "o1", b"c2")
        assert driver.table("named") == {"o1": {"customer": "c2", "name": "Bo"},
                                         "o2": {"customer": "c2", "name": "Bo"}}
