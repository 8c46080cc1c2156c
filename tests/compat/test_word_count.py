"""word_count: agent -> agent.send(key=word) -> Table(default=int); table_route and
topic_route pages."""
from collections import Counter
from urllib.parse import quote

from .conftest import js

MODULE = "tests.compat.programs.word_count"
AGENT_TOPIC = "tests.compat.programs.word_count.count_words"

POSTS = [
    "the quick brown fox jumps over the lazy dog",
    "the dog sleeps",
    "a fox is quick and a dog is lazy",
    "über straße café naïve",            # non-ASCII words: raw UTF-8 keys
    "the the the end",
] * 7 + [f"word{i} the" for i in range(30)]


def test_word_count(compat):
    oracle = dict(Counter(w for post in POSTS for w in post.split()))
    pair = compat(MODULE)
    pair.produce("posts", [(None, js(post)) for post in POSTS], partitions=8)
    # Faust creates an agent's own topic just before it subscribes; the broker's metadata
    # may not list it yet, and then the agent gets no partitions for minutes. Made here.
    pair.create_topic(AGENT_TOPIC, 8)
    pair.start()
    total = sum(oracle.values())
    got = pair.settle(lambda run: run.page("/counts/"),
                      lambda v: isinstance(v, dict) and sum(v.values()) >= total)
    pair.check("the word_counts table (GET /counts/)", got, oracle)
    words = sorted(oracle)
    routed = {f: {w: (run.page(f"/count/{quote(w)}/") or {}).get(w) for w in words}
              for f, run in pair.runs.items()}
    pair.check("table_route GET /count/{word}/", routed, oracle)
    last = {f: {w: (run.page(f"/last/{quote(w)}/") or {}).get(w) for w in words}
            for f, run in pair.runs.items()}
    pair.check("topic_route GET /last/{word}/", last, oracle)
    # The shuffle topic: one record per word occurrence, keyed by the word as raw UTF-8.
    shuffled = {f: sorted((r.key_bytes, r.value) for r in run.records(AGENT_TOPIC))
                for f, run in pair.runs.items()}
    pair.check("count_words' topic (key bytes, value)", shuffled,
               sorted((w.encode(), w) for post in POSTS for w in post.split()))
    pair.verdict()
