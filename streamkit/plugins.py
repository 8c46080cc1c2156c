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
from typing import TYPE_CHECKING, Callable, Mapping

from .errors import StreamkitError

if TYPE_CHECKING:
    from .app import App

log = logging.getLogger(__name__)

GROUP = "streamkit.plugins"


class PluginError(StreamkitError, ImportError):
    """A plugin could not be loaded: fix or remove it (the message names it)."""


@dataclass(frozen=True)
class Plugin:
    app: str
    install: Callable[["App"], None]
    name: str = ""


def plugin(app: str, name: str | None = None) -> Callable[[Callable[["App"], None]], Plugin]:
    """Decorator: `@plugin("orders") def fraud_check(app): ...` makes a Plugin."""
    def wrap(fn: Callable[["App"], None]) -> Plugin:
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


def discover(env: Mapping[str, str]) -> list[tuple[str, Plugin]]:
    """(source, plugin) for every entry point of the group and every STREAMKIT_PLUGINS entry."""
    found = [(f"entry point {ep.name} ({ep.value})", _load(f"entry point {ep.name} ({ep.value})", ep.load))
             for ep in entry_points(group=GROUP)]
    for spec in filter(None, (s.strip() for s in env.get("STREAMKIT_PLUGINS", "").split(","))):
        found.append((f"STREAMKIT_PLUGINS {spec}", _load(f"STREAMKIT_PLUGINS {spec}", _from_spec(spec))))
    return found


def install(app: "App", env: Mapping[str, str]) -> list[str]:
    """Install the plugins that name this app; return their names."""
    names = []
    for source, p in discover(env):
        if p.app != app.service_name:
            continue
        p.install(app)
        names.append(p.name)
        log.info("loaded plugin %s into %s from %s", p.name, app.service_name, source)
    return names
