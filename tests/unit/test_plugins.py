import textwrap

import pytest

import streamkit
from streamkit import Settings
from streamkit.errors import PluginError
from streamkit.plugins import install


def app(service="shop", plugins=""):
    return streamkit.App(f"{service}-1", settings=Settings.from_env({"STREAMKIT_PLUGINS": plugins}),
                         service_name=service)


def test_env_plugins_for_this_app_are_installed_and_others_are_not():
    a = app()
    names = install(a, "tests.unit.plugins_fixture.extra:doubled,"
                       "tests.unit.plugins_fixture.extra:other")
    assert names == ["doubled"]
    assert "orders" in a.topology.sources and "orders-doubled" in a.topology.sinks
    assert "invoices" not in a.topology.sources


def test_a_plugin_that_fails_to_import_stops_start_up_naming_it():
    with pytest.raises(PluginError, match="tests.unit.plugins_fixture.broken"):
        install(app(), "tests.unit.plugins_fixture.broken")
    with pytest.raises(PluginError, match="not a streamkit Plugin"):
        install(app(), "tests.unit.plugins_fixture.extra:not_a_plugin")


def test_entry_point_plugins_are_discovered(tmp_path, monkeypatch):
    dist = tmp_path / "shopplugins-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: shopplugins\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent("""
        [streamkit.plugins]
        doubled = tests.unit.plugins_fixture.extra:doubled
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    a = app()
    assert install(a) == ["doubled"]
    assert "orders-doubled" in a.topology.sinks


def test_routes_a_plugin_adds_are_served_by_a_faust_worker():
    # `faust worker` initializes the web server right after autodiscovery, once.
    a = app(plugins="tests.unit.plugins_fixture.extra:stats_page")
    a.worker_init_post_autodiscover()
    a.web.init_server()  # the second initialization, when the web service starts
    served = [r.resource.canonical for r in a.web.web_app.router.routes() if r.method == "GET"]
    assert served.count("/plugin/stats") == 1 and served.count("/tables") == 1


def test_a_plugin_found_twice_is_installed_once():
    a = app()
    names = install(a, "tests.unit.plugins_fixture.extra:doubled,"
                       "tests.unit.plugins_fixture.extra:doubled")
    assert names == ["doubled"]
    assert len(a.topology.sources["orders"].children) == 1
