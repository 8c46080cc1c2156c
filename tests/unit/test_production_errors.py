"""Records the broker refuses (larger than their topic's max.message.bytes): the
production-error policy, `fail` or `continue`, per sink and by default, on the driver."""
from __future__ import annotations

import orjson
import pytest

import streamkit
from streamkit import ProductionFailed, Settings, TopologyError
from streamkit.testing import TopologyTestDriver


def labels_app(on_error: str | None = None):
    """Each label's text, to the topic `labels`; each label counted per key."""
    app = streamkit.App("labels", settings=Settings.from_env({}))
    source = app.source("in")
    source.map_values(lambda v: v["text"]).to("labels", on_error=on_error)
    source.group_by_key().count("per-key")
    return app


def size(key: str, value: str) -> int:
    """A record's size as the driver counts it: key and value, serialized."""
    return len(key.encode()) + len(orjson.dumps(value))


def test_a_refused_record_goes_to_the_dead_letters_and_the_next_ones_go_on():
    with TopologyTestDriver(labels_app(), max_message_bytes={"labels": 20},
                            on_production_error="continue") as driver:
        driver.pipe("in", "a", {"text": "short"}, timestamp_ms=1)
        driver.pipe("in", "b", {"text": "x" * 40}, timestamp_ms=2)
        driver.pipe("in", "c", {"text": "also short"}, timestamp_ms=3)
        assert [(r.key, r.value) for r in driver.read_output("labels")] == [
            ("a", "short"), ("c", "also short")]
        [letter] = driver.output(driver.dead_letter_topic)
        assert (letter.key, letter.value) == (b"b", orjson.dumps("x" * 40))
        h = letter.headers
        assert h["streamkit.stage"] == b"produce"
        assert h["streamkit.sink.topic"] == b"labels"
        assert h["streamkit.sink.partition"] == b"0"
        assert h["streamkit.timestamp"] == b"2"
        want = f"{size('b', 'x' * 40)} bytes, more than the 20 of labels"
        assert h["streamkit.error"] == f"[Error 10] MessageSizeTooLargeError: {want}".encode()
        # Nothing else was lost: the input is committed past the refused record, and the
        # count saw every record.
        assert driver.committed("in") == 3
        assert driver.table("per-key") == {"a": 1, "b": 1, "c": 1}
        assert driver.production_errors.rejected == {"labels": 1}


def test_a_refused_record_fails_the_commit_and_nothing_past_the_last_commit_is_committed():
    with TopologyTestDriver(labels_app(), max_message_bytes={"labels": 20}) as driver:
        driver.pipe("in", "a", {"text": "short"})
        with pytest.raises(ProductionFailed, match=r"labels\[0\] refused a record \(key b'b'"):
            driver.pipe("in", "b", {"text": "x" * 40})
        assert driver.committed("in") == 1
        assert driver.output(driver.dead_letter_topic) == []
        # A worker started again processes the refused record again: once the topic takes
        # it, nothing is missing and nothing counted twice.
        driver.max_message_bytes["labels"] = 1000
        driver.restart(crash=True)
        assert [(r.key, r.value) for r in driver.output("labels")] == [
            ("a", "short"), ("b", "x" * 40)]
        assert driver.committed("in") == 2
        assert driver.table("per-key") == {"a": 1, "b": 1}


def test_a_sinks_own_policy_wins_over_the_default():
    with TopologyTestDriver(labels_app(on_error="continue"),
                            max_message_bytes={"labels": 20}) as driver:
        driver.pipe("in", "b", {"text": "x" * 40})
        assert [r.key for r in driver.output(driver.dead_letter_topic)] == [b"b"]
    with TopologyTestDriver(labels_app(on_error="fail"), max_message_bytes={"labels": 20},
                            on_production_error="continue") as driver:
        with pytest.raises(ProductionFailed):
            driver.pipe("in", "b", {"text": "x" * 40})


def test_a_record_the_dead_letter_topic_refuses_too_goes_there_without_its_value():
    with TopologyTestDriver(labels_app(on_error="continue"),
                            max_message_bytes={"labels": 20, "labels-dead-letters": 300}
                            ) as driver:
        driver.pipe("in", "b", {"text": "x" * 400}, timestamp_ms=7)
        [letter] = driver.output(driver.dead_letter_topic)
        assert (letter.key, letter.value) == (b"b", None)
        assert letter.headers["streamkit.value_bytes"] == str(len(orjson.dumps("x" * 400))).encode()
        assert letter.headers["streamkit.sink.topic"] == b"labels"
        assert driver.committed("in") == 1
        # Too large even without its value: nothing can say where it went, so the commit fails.
        driver.max_message_bytes["labels-dead-letters"] = 10
        with pytest.raises(ProductionFailed, match="refused the dead letter"):
            driver.pipe("in", "c", {"text": "y" * 400})
        assert driver.committed("in") == 1


def test_a_changelog_record_is_never_skipped_whatever_the_policy():
    app = streamkit.App("notes", settings=Settings.from_env({}))
    app.source("in").group_by_key().aggregate("notes", initial="", add=lambda acc, v: acc + v)
    with TopologyTestDriver(app, max_message_bytes={"notes-notes-changelog": 30},
                            on_production_error="continue") as driver:
        driver.pipe("in", "k", "short")
        with pytest.raises(ProductionFailed, match="a changelog never skips an update"):
            driver.pipe("in", "k", "x" * 40)
        assert driver.committed("in") == 1
        assert driver.output(driver.dead_letter_topic) == []


def test_two_sinks_of_one_topic_cannot_ask_for_different_policies():
    app = streamkit.App("two", settings=Settings.from_env({}))
    source = app.source("in")
    source.to("out", on_error="continue")
    source.to("out", on_error="continue")  # the same policy again is fine
    with pytest.raises(TopologyError, match="both"):
        source.to("out", on_error="fail")
    with pytest.raises(TopologyError, match="'continue' or 'fail'"):
        source.to("other", on_error="stop")
