"""GET /ui: a page that draws each app's topology and shows, live, lag per partition,
records in, restored records, late events and dead letters (read from /topology and
/metrics). On a gateway, whose /topology lists every registered app, the figures are
those of every worker of those apps (GET /gateway/workers), each row naming its worker."""
from __future__ import annotations

PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>streamkit</title>
<style>
 body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #1d2330; }
 h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.5em; }
 svg { border: 1px solid #d8dce6; background: #fbfcfe; }
 .topic rect { fill: #e7f0ff; stroke: #3d6fd1; } .table rect { fill: #e9f8ec; stroke: #2c9a4b; }
 .op rect { fill: #fff; stroke: #8a93a6; } .sink rect { fill: #fff3e3; stroke: #d08a2c; }
 .node text { font-size: 11px; } .edge { stroke: #8a93a6; fill: none; marker-end: url(#arrow); }
 table.figures { border-collapse: collapse; margin-top: .5em; }
 table.figures td, table.figures th { border: 1px solid #d8dce6; padding: 2px 8px; text-align: left; }
 #error { color: #b3261e; }
</style></head><body>
<h1>streamkit <span id="apps"></span></h1>
<div id="error"></div><div id="graphs"></div>
<h2>Live figures</h2>
<table class="figures" id="figures"><thead><tr><th>worker</th><th>metric</th><th>labels</th><th>value</th></tr></thead><tbody></tbody></table>
<script>
const params = new URLSearchParams(location.search);
const headers = params.get("token") ? {"Authorization": "Bearer " + params.get("token")} : {};
const SHOWN = ["streamkit_consumer_lag", "streamkit_restored_records_total", "streamkit_late_events_total",
               "streamkit_dead_letters_total", "streamkit_records_in_total", "streamkit_ready"];
function el(name, attrs, text) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function layout(app) {
  // Columns: topics, then operators by depth, then tables and sinks.
  const nodes = [], edges = [];
  const add = (id, label, kind, col) => {
    let n = nodes.find(x => x.id === id);
    if (!n) { n = {id, label, kind, col}; nodes.push(n); } else n.col = Math.max(n.col, col);
    return n;
  };
  for (const sub of app.sub_topologies) {
    const walk = (node, parent, depth) => {
      let id, label, kind;
      if (node.name.startsWith("source:")) { id = "topic:" + node.name.slice(7); label = node.name.slice(7); kind = "topic"; }
      else if (node.name.startsWith("sink:")) { id = "topic:" + node.name.slice(5); label = node.name.slice(5); kind = "sink"; }
      else if (/^(aggregate|table|table-aggregate|table-filter|table-map-values):/.test(node.name)) {
        const t = node.name.split(":")[1]; id = "table:" + t; label = t; kind = "table"; }
      else { id = sub.id + ":" + depth + ":" + node.name + ":" + nodes.length; label = node.name; kind = "op"; }
      const n = add(id, label, kind, depth);
      if (parent) edges.push([parent.id, n.id]);
      for (const c of node.children) walk(c, n, depth + 1);
    };
    for (const g of sub.graph) walk(g, null, 0);
    for (const t of sub.tables) add("table:" + t, t, "table", 1);
  }
  for (const [name, topic] of Object.entries(app.global_tables || {})) {
    add("topic:" + topic, topic, "topic", 0); add("table:" + name, name, "table", 1);
    edges.push(["topic:" + topic, "table:" + name]);
  }
  return {nodes, edges};
}
function draw(app) {
  const {nodes, edges} = layout(app);
  const rows = {}; for (const n of nodes) { n.row = rows[n.col] = (rows[n.col] ?? -1) + 1; }
  const W = 190, H = 44, width = (Math.max(...nodes.map(n => n.col)) + 1) * W + 20;
  const height = (Math.max(...Object.values(rows)) + 1) * H + 20;
  const svg = el("svg", {width, height, "data-app": app.app});
  const defs = el("defs"); const m = el("marker", {id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5,
    markerWidth: 6, markerHeight: 6, orient: "auto"}); m.appendChild(el("path", {d: "M0,0 L10,5 L0,10 z"}));
  defs.appendChild(m); svg.appendChild(defs);
  const pos = n => [10 + n.col * W, 10 + n.row * H];
  for (const [a, b] of edges) {
    const na = nodes.find(n => n.id === a), nb = nodes.find(n => n.id === b);
    const [x1, y1] = pos(na), [x2, y2] = pos(nb);
    svg.appendChild(el("path", {class: "edge", d: `M${x1 + 160},${y1 + 15} C${x1 + 175},${y1 + 15} ${x2 - 15},${y2 + 15} ${x2},${y2 + 15}`}));
  }
  for (const n of nodes) {
    const [x, y] = pos(n);
    const g = el("g", {class: "node " + n.kind, "data-kind": n.kind, "data-name": n.label});
    g.appendChild(el("rect", {x, y, width: 160, height: 30, rx: 5}));
    g.appendChild(el("text", {x: x + 8, y: y + 19}, n.label.length > 26 ? n.label.slice(0, 25) + "…" : n.label));
    g.appendChild(el("title", {}, n.label));
    svg.appendChild(g);
  }
  return svg;
}
function parseMetrics(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = line.match(/^(\w+)(\{(.*)\})?\s+(\S+)$/);
    if (m && SHOWN.includes(m[1])) out.push({name: m[1], labels: m[3] || "", value: Number(m[4])});
  }
  return out;
}
let deployment = false;  // a gateway's page: the figures of every worker it knows
async function sources() {
  if (!deployment) return [{url: "", metrics: await (await fetch("metrics", {headers})).text()}];
  const r = await fetch("gateway/workers", {headers});
  const workers = (await r.json()).workers;
  const silent = workers.filter(w => w.metrics === null).map(w => w.error);
  document.getElementById("error").textContent = silent.join("; ");
  return workers.filter(w => w.metrics !== null);
}
async function refresh() {
  try {
    const found = await sources();
    const body = document.querySelector("#figures tbody"); body.innerHTML = "";
    for (const w of found) for (const f of parseMetrics(w.metrics)) {
      const tr = document.createElement("tr");
      tr.dataset.metric = f.name; tr.dataset.labels = f.labels; tr.dataset.value = f.value;
      tr.dataset.worker = w.url;
      for (const t of [w.url || "this worker", f.name, f.labels, f.value]) {
        const td = document.createElement("td"); td.textContent = t; tr.appendChild(td); }
      body.appendChild(tr);
    }
    document.body.dataset.refreshed = String(Date.now());
  } catch (e) { document.getElementById("error").textContent = String(e); }
}
async function main() {
  const r = await fetch("topology", {headers});
  const data = await r.json();
  deployment = Array.isArray(data.apps);
  const apps = data.apps || [data];
  document.getElementById("apps").textContent = apps.map(a => a.app).join(", ");
  for (const app of apps) {
    const h = document.createElement("h2"); h.textContent = app.app;
    document.getElementById("graphs").append(h, draw(app));
  }
  await refresh(); setInterval(refresh, 2000);
}
main().catch(e => { document.getElementById("error").textContent = String(e); });
</script></body></html>
"""
