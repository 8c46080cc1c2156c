import pytest

import streamkit
from streamkit import Settings, TopologyError


def app(name="topo"):
    return streamkit.App(name, settings=Settings.from_env({}))


def test_group_by_cuts_the_graph_at_a_repartition_topic():
    a = app()
    orders = a.source("orders")
    orders.group_by(lambda o: o["customer"], name="by-customer").count("per-customer")
    a.topology.finalize()
    desc = a.topology.describe()
    assert len(desc["sub_topologies"]) == 2
    assert "topo-by-customer-repartition" in a.topology.sources
    assert {"topo-per-customer-changelog", "topo-by-customer-repartition"} <= set(desc["internal_topics"])
    assert a.topology.group_of_topic("orders") != a.topology.group_of_topic("topo-by-customer-repartition")


def test_merge_joins_sub_topologies():
    a = app()
    x, y = a.source("x"), a.source("y")
    x.merge(y).group_by_key().count("n")
    a.topology.finalize()
    assert a.topology.group_of_topic("x") == a.topology.group_of_topic("y")


def test_duplicate_table_names_are_rejected():
    a = app()
    a.source("x").group_by_key().count("n")
    with pytest.raises(TopologyError, match="already exists"):
        a.source("y").group_by_key().count("n")


def test_streams_cannot_be_declared_after_start():
    a = app()
    s = a.source("x")
    a.topology.finalize()
    with pytest.raises(TopologyError, match="already running"):
        s.filter(lambda v: True)
