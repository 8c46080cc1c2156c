import pytest

from streamkit import ConfigError, Settings


def test_defaults_work_on_a_fresh_machine():
    s = Settings.from_env({})
    assert s.bootstrap_servers == ["127.0.0.1:9092"]
    assert s.profile == "dev"
    assert s.web_host == "127.0.0.1"
    assert s.session_timeout_ms == 4000


def test_a_real_cluster_gets_the_production_profile():
    s = Settings.from_env({"STREAMKIT_BROKER": "kafka://k1:9092,kafka://k2:9093"})
    assert s.profile == "production"
    assert s.bootstrap_servers == ["k1:9092", "k2:9093"]
    # Apache Kafka rejects session timeouts under group.min.session.timeout.ms (6 s).
    assert s.session_timeout_ms >= 6000
    assert s.replication_factor == 3


def test_profile_and_numbers_can_be_overridden():
    s = Settings.from_env({"STREAMKIT_BROKER": "kafka://k1:9092", "STREAMKIT_PROFILE": "dev",
                           "STREAMKIT_PARTITIONS": "8", "STREAMKIT_WEB_PORT": "7000",
                           "STREAMKIT_READ_CACHE_ENTRIES": "0"})
    assert (s.profile, s.partitions, s.web_port, s.session_timeout_ms) == ("dev", 8, 7000, 4000)
    assert s.read_cache_entries == 0 and Settings.from_env({}).read_cache_entries == 10000


def test_each_profile_fits_its_broker():
    timings = {p: Settings.from_env({"STREAMKIT_PROFILE": p}) for p in
               ("dev", "devbroker", "production")}
    # A local Kafka answers a fetch when records arrive: waiting long costs no latency.
    assert (timings["dev"].session_timeout_ms, timings["dev"].fetch_max_wait_ms) == (4000, 500)
    # The dev broker answers only when the wait runs out.
    assert timings["devbroker"].fetch_max_wait_ms == 10
    assert timings["devbroker"].session_timeout_ms == 4000
    assert (timings["production"].session_timeout_ms, timings["production"].fetch_max_wait_ms,
            timings["production"].replication_factor) == (30000, 500, 3)
    # Reads to the end: Apache Kafka answers a wait of 0 at once, the dev broker never does.
    assert {p: t.read_to_end_wait_ms for p, t in timings.items()} == {
        "dev": 0, "devbroker": 1, "production": 0}


@pytest.mark.parametrize("env, fragment", [
    ({"STREAMKIT_WEB_PORT": "http"}, "STREAMKIT_WEB_PORT"),
    ({"STREAMKIT_WEB_PORT": "70000"}, "STREAMKIT_WEB_PORT"),
    ({"STREAMKIT_PARTITIONS": "0"}, "partitions"),
    ({"STREAMKIT_PROFILE": "staging"}, "STREAMKIT_PROFILE"),
    ({"STREAMKIT_BROKER": "redis://x:1"}, "scheme"),
    ({"STREAMKIT_BROKER": "kafka://nohost"}, "host:port"),
    ({"STREAMKIT_ON_ERROR": "ignore"}, "STREAMKIT_ON_ERROR"),
    ({"STREAMKIT_SECURITY_PROTOCOL": "TLS"}, "STREAMKIT_SECURITY_PROTOCOL"),
    ({"STREAMKIT_READ_CACHE_ENTRIES": "-1"}, "read_cache_entries"),
    ({"STREAMKIT_READ_CACHE_ENTRIES": "many"}, "STREAMKIT_READ_CACHE_ENTRIES"),
    ({"STREAMKIT_GC_THRESHOLDS": "700,10"}, "STREAMKIT_GC_THRESHOLDS"),
    ({"STREAMKIT_GC_THRESHOLDS": "700,0,100"}, "STREAMKIT_GC_THRESHOLDS"),
    ({"STREAMKIT_GC_THRESHOLDS": "fast"}, "STREAMKIT_GC_THRESHOLDS"),
])
def test_bad_values_are_clear_startup_errors(env, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Settings.from_env(env)


def test_sasl_settings_pass_to_clients():
    s = Settings.from_env({"STREAMKIT_BROKER": "kafka://k1:9092",
                           "STREAMKIT_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                           "STREAMKIT_SASL_MECHANISM": "PLAIN",
                           "STREAMKIT_SASL_USERNAME": "u", "STREAMKIT_SASL_PASSWORD": "p"})
    kw = s.security.client_kwargs()
    assert kw == {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
                  "sasl_plain_username": "u", "sasl_plain_password": "p"}


def test_the_documented_tables_are_the_declared_settings():
    from pathlib import Path

    from streamkit.config import markdown_table
    from streamkit.gateway.settings import GATEWAY_VARS

    root = Path(__file__).resolve().parents[2]
    assert markdown_table() in (root / "README.md").read_text()
    assert markdown_table(GATEWAY_VARS) in (root / "docs" / "gateway.md").read_text()


def test_settings_made_in_code_take_the_defaults_of_their_profile():
    production = Settings(profile="production")
    assert (production.session_timeout_ms, production.fetch_max_wait_ms,
            production.replication_factor) == (30000, 500, 3)
    assert Settings(profile="devbroker").fetch_max_wait_ms == 10
    assert Settings(profile="production", session_timeout_ms=45000).session_timeout_ms == 45000


def test_the_collector_thresholds_default_to_rare_full_passes_or_pythons_own():
    assert Settings.from_env({}).gc_thresholds == (7000, 10, 100)
    assert Settings.from_env({"STREAMKIT_GC_THRESHOLDS": " 2000, 20,50"}).gc_thresholds \
        == (2000, 20, 50)
    assert Settings.from_env({"STREAMKIT_GC_THRESHOLDS": "python"}).gc_thresholds is None
