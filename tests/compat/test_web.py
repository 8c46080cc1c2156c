"""Faust's own web server on the word_count program: its built-in views (/, /table/...,
/router/...) and the answers to a path nobody serves and to a method a page does not take."""
import json
import re
import urllib.error
import urllib.request

from .conftest import js
from .test_word_count import AGENT_TOPIC, MODULE, POSTS

VIEWS = ["/", "/table/", "/table/word_counts/", "/table/word_counts/fox/",
         "/table/no_such_table/", "/router/", "/router/word_counts/",
         "/router/word_counts/fox/", "/count/fox/"]


def fetch(run, path: str, method: str = "GET") -> dict:
    """status, content type and body (JSON decoded when it is JSON) of one request, with the
    worker's own URL (its canonical_url, which differs by port and host) as <worker> and the
    run's app id (in topic names) as <app>."""
    req = urllib.request.Request(run.worker.url + path, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, ctype, body = resp.status, resp.headers.get_content_type(), resp.read()
    except urllib.error.HTTPError as err:
        status, ctype, body = err.code, err.headers.get_content_type(), err.read()
    text = re.sub(rf"https?://[^\"/]+:{run.worker.port}/?", "<worker>", body.decode())
    text = text.replace(run.app_id, "<app>")
    try:
        decoded = json.loads(text)
    except ValueError:
        decoded = text
    return {"status": status, "type": ctype, "body": decoded}


def test_faust_web_views(compat):
    pair = compat(MODULE)
    pair.produce("posts", [(None, js(post)) for post in POSTS], partitions=8)
    pair.create_topic(AGENT_TOPIC, 8)
    pair.start()
    fox = sum(post.split().count("fox") for post in POSTS)
    pair.settle(lambda run: run.page("/count/fox/"), lambda v: v == {"fox": fox})
    for path in VIEWS:
        got = {f: fetch(run, path) for f, run in pair.runs.items()}
        pair.check(f"GET {path}", got, got["faust"])   # Faust's answer is the oracle here
    # What Faust answers itself, checked from its definition (views and blueprint routes).
    answers = {f: {p: fetch(run, p) for p in ("/", "/table/", "/table/word_counts/fox/")}
               for f, run in pair.runs.items()}
    pair.check("/ (production index), /table/ (table list), /table/<t>/<k>/ (value)",
               {f: {p: (a["status"], a["body"]) for p, a in v.items()}
                for f, v in answers.items()},
               {"/": (200, {"status": "OK"}),
                "/table/": (200, [{"name": "word_counts",
                                   "help": "Keep count of words (str to int)."}]),
                "/table/word_counts/fox/": (200, fox)})
    # Paths and methods nobody serves: Faust answers with aiohttp's plain-text responses,
    # streamkit with the same status as a JSON error (a documented difference).
    for method, path, status, code, reason in [
            ("GET", "/no/such/path", 404, "not_found", "Not Found"),
            ("POST", "/count/fox/", 405, "method_not_allowed", "Method Not Allowed"),
            ("DELETE", "/table/", 405, "method_not_allowed", "Method Not Allowed")]:
        got = {f: fetch(run, path, method) for f, run in pair.runs.items()}
        got = {f: (a["status"], a["type"], a["body"] if f == "faust" else
                   (a["body"].get("error", {}).get("code") if isinstance(a["body"], dict) else a["body"]))
               for f, a in got.items()}
        pair.differs(f"{method} {path}", got, (status, "text/plain", f"{status}: {reason}"),
                     (status, "application/json", code))
    pair.verdict()
