"""Plugins used by tests/unit/test_plugins.py."""
from streamkit.plugins import Plugin, plugin


@plugin("shop")
def doubled(app):
    app.source("orders").map_values(lambda o: o * 2).to("orders-doubled")


other = Plugin(app="billing", install=lambda app: app.source("invoices").to("never"), name="other")
not_a_plugin = 42


@plugin("shop")
def stats_page(app):
    async def page(request):
        from streamkit.http import json_response
        return json_response({"plugin": "stats_page"})

    app.add_routes(lambda routes: routes.get("/plugin/stats", page))
