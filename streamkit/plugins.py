"""Agents and streams added to an app without editing it.

A plugin is a `Plugin(app="orders", install=fn)` object: `fn(app)` declares streams,
tables or Faust agents on the app it names. Plugins are found through the `streamkit.plugins`
entry-point group of installed packages and the `STREAMKIT_PLUGINS` list
(`module` or `module:attribute`, comma-separated; `module` means `module:plugin`). An app
installs only the plugins that name it, when its worker starts, and logs each one. A plugin
that cannot be imported stops start-up with an error that names it.
"""
from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Callable, Protocol

from .errors import PluginError

log = logging.getLogger(__name__)

GROUP = "streamkit.plugins"


class PluginHost(Protocol):
    """The app a plugin installs into (a streamkit.App: plugins declare streams, tables,
    Faust agents and services on it)."""

    service_name: str


@dataclass(frozen=True)
class Plugin:
    app: str
    install: Callable[[Any], None]  # called with the streamkit.App it names
    name: str = ""


def plugin(app: str, name: str | None = None) -> Callable[[Callable[[Any], None]], Plugin]:
    """Decorator: `@plugin("orders") def fraud_check(app): ...` makes a Plugin."""
    def wrap(fn: Callable[[Any], None]) -> Plugin:
        return Plugin(app=app, install=fn, name=name or fn.__name__)
    return wrap


def _load(source: str, loader: Callable[[], object]) -> Plugin:
    try:
        obj = loader()
    except Exception as exc:
        raise PluginError(f"plugin {source} failed to import: {exc!r}") from exc
    if not isinstance(obj, Plugin):
        raise PluginError(f"plugin {source} is a {type(obj).__name__}, not a streamkit Plugin")
    return obj


def _from_spec(spec: str) -> Callable[[], object]:
    module, _, attr = spec.partition(":")
    return lambda: getattr(importlib.import_module(module), attr or "plugin")


def discover(listed: str) -> list[tuple[str, Plugin]]:
    """(source, plugin) for every entry point of the group and every entry of `listed`
    (STREAMKIT_PLUGINS: `module:attr,...`)."""
    found = [(f"entry point {ep.name} ({ep.value})", _load(f"entry point {ep.name} ({ep.value})", ep.load))
             for ep in entry_points(group=GROUP)]
    for spec in filter(None, (s.strip() for s in listed.split(","))):
        found.append((f"STREAMKIT_PLUGINS {spec}", _load(f"STREAMKIT_PLUGINS {spec}", _from_spec(spec))))
    return found


def install(app: PluginHost, listed: str = "") -> list[str]:
    """Install the plugins that name this app (found through entry points, and in
    `listed`); return their names."""
    names: list[str] = []
    seen: set[int] = set()
    for source, p in discover(listed):
        # One plugin may be found twice (listed and declared, or declared by two packages):
        # it is installed once.
        if p.app != app.service_name or id(p) in seen:
            continue
        seen.add(id(p))
        p.install(app)
        names.append(p.name)
        log.info("loaded plugin %s into %s from %s", p.name, app.service_name, source)
    return names
