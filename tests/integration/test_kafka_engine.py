"""streamkit on Apache Kafka as it is, not as the fixtures set it up: the topics it creates
read back from the broker, the production profile end to end, a source the broker compresses,
TLS with a CA made here, Kafka's authorizer taking a permission away, and Faust's own table
recovery reading batched changelog writes."""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time

from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.protocol.admin import CreateAclsRequest

from streamkit.devbroker import free_port
from streamkit.kafkabroker import start_kafka
from streamkit.testing.kafka import admin_client, create_topic, produce, topic_names

from .conftest import COUNTER, ROOT, totals, worker_env
from .test_tables import KEYS, events, expected, processed_all, wait_for

SHOP = "tests.integration.apps.shop"
ECHO = "tests.integration.apps.gateway_echo"
FRONT = "tests.integration.apps.gateway_front"
FAUST_COUNTER = "tests.integration.apps.faust_counter"


async def describe(bootstrap: str, topics: list[str]) -> dict[str, dict]:
    """Per topic: its partition count, replication factor and cleanup.policy, as the broker
    reports them."""
    async with admin_client(bootstrap) as admin:
        out = {d["topic"]: {"partitions": len(d["partitions"]),
                            "replication": len(d["partitions"][0]["replicas"])}
               for d in await admin.describe_topics(topics) if d["error_code"] == 0}
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t) for t in topics])
        for response in responses:
            for _code, _msg, _type, name, entries in response.resources:
                policy = next(value for key, value, *_ in entries if key == "cleanup.policy")
                out[name]["cleanup.policy"] = policy
        return out


def test_internal_topics_are_created_with_their_partitions_cleanup_policy_and_replication(
        broker, app_id, workers, tmp_path):
    produce(broker, f"{app_id}-orders", [(f"o{i}", {"customer": f"c{i % 5}", "amount": 1,
                                                    "kind": "web"}) for i in range(50)],
            partitions=3)
    w = workers(SHOP, worker_env(broker, tmp_path / "data", SHOP_APP_ID=app_id,
                                 STREAMKIT_PARTITIONS="3"))
    w.wait_ready()
    ours = {t for t in asyncio.run(topic_names(broker)) if t.startswith(app_id)}
    want = {
        f"{app_id}-orders": ("delete", 3),                  # the source, made by the test
        f"{app_id}-big": ("delete", 3),                     # a sink
        f"{app_id}-dead-letters": ("delete", 3),
        f"{app_id}-late-events": ("delete", 3),
        f"{app_id}-by-customer-repartition": ("delete", 3),
        f"{app_id}-by-channel-repartition": ("delete", 3),
        f"{app_id}-spend-changelog": ("compact", 3),
        f"{app_id}-per-channel-changelog": ("compact", 3),
    }
    got = asyncio.run(describe(broker, sorted(ours | {"streamkit-registry"})))
    assert {t: (d["cleanup.policy"], d["partitions"]) for t, d in got.items() if t in want} == want
    # Nothing else of the app's exists: the broker created no topic on its own.
    assert ours == set(want) | {t for t in ours if t.startswith(f"{app_id}-__")}
    assert got["streamkit-registry"]["cleanup.policy"] == "compact"
    assert got["streamkit-registry"]["partitions"] == 1
    assert all(d["replication"] == 1 for d in got.values())


def test_the_production_profile_runs_end_to_end_on_kafka(broker, app_id, workers, tmp_path):
    env = worker_env(broker, tmp_path / "data", COUNTER_APP_ID=app_id,
                     COUNTER_SOURCE=f"{app_id}-events", STREAMKIT_PROFILE="production",
                     # One node: three copies cannot be placed (the profile's default).
                     STREAMKIT_REPLICATION_FACTOR="1", STREAMKIT_GC_THRESHOLDS="900,11,50")
    produce(broker, f"{app_id}-events", events(3000))
    w = workers(COUNTER, env, "w1")
    w.wait_ready(timeout=90)
    wait_for(lambda: totals(w, KEYS) == expected(3000))
    assert ("profile=production session_timeout_ms=30000 heartbeat_interval_ms=3000 "
            "fetch_max_wait_ms=500") in w.log_tail(200_000)
    assert "gc_thresholds=900,11,50" in w.log_tail(200_000)  # read back from gc
    # A graceful restart leaves the group, so the 30 s session timeout costs nothing.
    assert w.stop() == 0
    produce(broker, f"{app_id}-events", events(2000, start=3000))
    w2 = workers(COUNTER, env, "w2")
    w2.wait_ready(timeout=90)
    wait_for(lambda: totals(w2, KEYS) == expected(5000))


def test_a_source_topic_the_broker_compresses_with_zstd_is_counted_exactly(
        broker, app_id, workers, counter_env):
    # A topic whose compression.type is zstd holds every batch zstd-compressed by the broker,
    # as a Java producer's compression.type=zstd writes them.
    asyncio.run(create_topic(broker, f"{app_id}-events", 4, **{"compression.type": "zstd"}))
    produce(broker, f"{app_id}-events", events(2000))
    w = workers(COUNTER, counter_env())
    w.wait_ready()
    wait_for(lambda: totals(w, KEYS) == expected(2000))


def make_tls_files(d) -> tuple[str, str]:
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca.pem, server keystore
    holding the server's key and certificate, as Kafka's PEM keystore reads it)."""
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=streamkit test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.cnf")
    keystore = d / "server-keystore.pem"
    keystore.write_text((d / "server.key").read_text() + (d / "server.crt").read_text())
    return str(d / "ca.pem"), str(keystore)


def listener_beside(node, protocol: str, port: int) -> dict[str, str]:
    """A node's settings for one more listener (named as its protocol) on port, beside the
    PLAINTEXT one the fixtures and the test's own clients use."""
    return {"listeners": f"PLAINTEXT://127.0.0.1:{node.port},"
                         f"CONTROLLER://127.0.0.1:{node.controller_port},"
                         f"{protocol}://127.0.0.1:{port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port},"
                                    f"{protocol}://127.0.0.1:{port}",
            "listener.security.protocol.map":
                f"PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,{protocol}:{protocol}"}


def test_a_worker_talks_to_kafka_over_tls_with_a_ca_made_here(app_id, workers, tmp_path):
    ca, keystore = make_tls_files(tmp_path)
    tls_port = free_port()

    def tls_listener(node):
        return {**listener_beside(node, "SSL", tls_port),
                "ssl.keystore.type": "PEM", "ssl.keystore.location": keystore}

    with start_kafka(1, data_dir=tmp_path / "kafka", overrides=tls_listener) as cluster:
        produce(cluster.bootstrap, f"{app_id}-events", events(1000))
        # The worker knows only the TLS listener: every client it has goes through it.
        env = worker_env(cluster.bootstrap, tmp_path / "data", COUNTER_APP_ID=app_id,
                         COUNTER_SOURCE=f"{app_id}-events",
                         STREAMKIT_BROKER=f"kafka://127.0.0.1:{tls_port}",
                         STREAMKIT_SECURITY_PROTOCOL="SSL", STREAMKIT_SSL_CAFILE=ca)
        w = workers(COUNTER, env)
        w.wait_ready(timeout=90)
        wait_for(lambda: totals(w, KEYS) == expected(1000))
        assert "security=SSL" in w.log_tail(200_000)
        produce(cluster.bootstrap, f"{app_id}-events", events(500, start=1000))
        wait_for(lambda: totals(w, KEYS) == expected(1500))


def test_faust_recovers_its_own_table_from_batched_changelog_writes(
        broker, app_id, workers, tmp_path):
    users = [f"u{i}" for i in range(50)]
    # Keyed by user: a Faust table is partitioned like the stream that updates it.
    data = [(users[i % 50], {"user": users[i % 50], "n": i % 9 + 1}) for i in range(20_000)]
    want = {u: sum(ev["n"] for _, ev in data if ev["user"] == u) for u in users}
    produce(broker, f"{app_id}-events", data)

    def faust_worker(name: str):
        env = {"STREAMKIT_BROKER": f"kafka://{broker}", "FAUST_APP_ID": app_id,
               "STREAMKIT_DATA_DIR": str(tmp_path / name), "STREAMKIT_WEB_PORT": str(free_port()),
               "PYTHONPATH": ROOT}
        return workers(FAUST_COUNTER, env, name)

    def sums(w):
        status, body = w.get("/sums")
        return body if status == 200 else None

    first = faust_worker("first")
    wait_for(lambda: sums(first) == want, timeout=120)
    assert first.stop() == 0
    # A new worker with an empty disk: the table comes back from the changelog alone.
    second = faust_worker("second")
    wait_for(lambda: sums(second) == want, timeout=120)
    # Faust may answer from the recovered table before its log line is written.
    wait_for(lambda: "Restore complete" in second.log_tail(1_000_000), timeout=60)


# Kafka's ACL codes (org.apache.kafka.common.acl / resource): resource types, the literal
# pattern, operations and permissions.
TOPIC, GROUP, CLUSTER, LITERAL, ALL, READ, WRITE, DENY, ALLOW = 2, 3, 4, 3, 2, 3, 4, 2, 3


async def grant(bootstrap: str, *acls: tuple[int, str, int, int]) -> None:
    """Create ACLs for User:app, each (resource type, name, operation, permission), as an
    administrator (the PLAINTEXT listener's ANONYMOUS, a super user here)."""
    async with admin_client(bootstrap) as admin:
        client = admin._client
        node = client.get_random_node()
        for rtype, name, operation, permission in acls:
            answer = await client.send(node, CreateAclsRequest(
                rtype, name, LITERAL, "User:app", "*", operation, permission))
            assert [code for code, _ in answer.creation_responses] == [0], answer


@contextlib.contextmanager
def kafka_with_acls(tmp_path):
    """A Kafka node with Kafka's own authorizer: PLAINTEXT clients are ANONYMOUS, a super
    user (the test's); SASL/PLAIN ones are User:app, who may do anything until told
    otherwise. Yields the node and the environment of a worker that logs in as app."""
    sasl_port = free_port()

    def sasl_listener(node):
        return {**listener_beside(node, "SASL_PLAINTEXT", sasl_port),
                "sasl.enabled.mechanisms": "PLAIN",
                "listener.name.sasl_plaintext.plain.sasl.jaas.config":
                    "org.apache.kafka.common.security.plain.PlainLoginModule required "
                    'user_app="app-secret";',
                "authorizer.class.name":
                    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                "super.users": "User:ANONYMOUS"}

    with start_kafka(1, data_dir=tmp_path / "kafka", overrides=sasl_listener) as cluster:
        asyncio.run(grant(cluster.bootstrap, (TOPIC, "*", ALL, ALLOW), (GROUP, "*", ALL, ALLOW),
                          (CLUSTER, "kafka-cluster", ALL, ALLOW)))
        yield cluster, {"STREAMKIT_BROKER": f"kafka://127.0.0.1:{sasl_port}",
                        "STREAMKIT_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                        "STREAMKIT_SASL_MECHANISM": "PLAIN", "STREAMKIT_SASL_USERNAME": "app",
                        "STREAMKIT_SASL_PASSWORD": "app-secret"}


def counting_as_app(cluster, login, app_id, workers, tmp_path, **extra):
    """A counter worker logged in as User:app, once it has counted 1000 events."""
    produce(cluster.bootstrap, f"{app_id}-events", events(1000))
    w = workers(COUNTER, worker_env(cluster.bootstrap, tmp_path / "data", COUNTER_APP_ID=app_id,
                                    COUNTER_SOURCE=f"{app_id}-events", **login, **extra))
    w.wait_ready(timeout=90)
    wait_for(lambda: totals(w, KEYS) == expected(1000))
    return w


def test_a_worker_whose_write_permission_is_taken_away_stops_instead_of_retrying(
        app_id, workers, tmp_path):
    # The worker's next commit after a DENY on writing its table's changelog is refused,
    # and no retry can mend it: the worker stops with a non-zero exit and says why,
    # instead of retrying for ever while it holds ever more records.
    with kafka_with_acls(tmp_path) as (cluster, login):
        admin = cluster.bootstrap
        w = counting_as_app(cluster, login, app_id, workers, tmp_path)
        asyncio.run(grant(admin, (TOPIC, f"{app_id}-totals-changelog", WRITE, DENY)))
        produce(admin, f"{app_id}-events", events(500, start=1000))
        wait_for(lambda: not w.alive(), timeout=60)
        assert w.returncode != 0
        assert "TopicAuthorizationFailedError" in w.log_tail(200_000)


def test_a_service_that_may_no_longer_read_its_requests_stops(app_id, workers, tmp_path):
    # The same for the request path: a DENY on reading a service's request topic makes its
    # fetches fail for good; the worker stops rather than log a retry five times a second.
    with kafka_with_acls(tmp_path) as (cluster, login):
        topic = f"{app_id}-echo"
        env = worker_env(cluster.bootstrap, tmp_path / "data", ECHO_APP_ID=app_id,
                         ECHO_TOPIC=topic, COUNTED_TOPIC=f"{app_id}-counted", **login)
        w = workers(ECHO, env)
        w.wait_ready(timeout=90)
        asyncio.run(grant(cluster.bootstrap, (TOPIC, topic, READ, DENY)))
        wait_for(lambda: not w.alive(), timeout=60)
        assert w.returncode != 0
        assert "TopicAuthorizationFailedError" in w.log_tail(200_000)


def test_a_gateway_that_may_no_longer_read_its_replies_stops(app_id, workers, tmp_path):
    with kafka_with_acls(tmp_path) as (cluster, login):
        env = worker_env(cluster.bootstrap, tmp_path / "data", **login,
                         STREAMKIT_GATEWAY_ID=f"{app_id}-gw",
                         STREAMKIT_GATEWAY_SERVICES=f"echo={app_id}-echo",
                         STREAMKIT_REGISTRY_TOPIC=f"{app_id}-registry")
        g = workers(FRONT, env)
        g.wait_ready(timeout=90)
        asyncio.run(grant(cluster.bootstrap, (TOPIC, f"{app_id}-gw-responses", READ, DENY)))
        wait_for(lambda: not g.alive(), timeout=60)
        assert g.returncode != 0
        assert "TopicAuthorizationFailedError" in g.log_tail(200_000)


def stop_while_frozen(cluster, w) -> float:
    """SIGTERM the worker while its only Kafka node is frozen (SIGSTOP); the seconds it took
    to end, which it must do with exit status 0."""
    (node,) = cluster.nodes
    os.kill(node.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        os.kill(w.pid, signal.SIGTERM)
        wait_for(lambda: not w.alive(), timeout=150)
        took = time.monotonic() - started
    finally:
        os.kill(node.pid, signal.SIGCONT)
    assert w.returncode == 0, w.log_tail()
    return took


def test_a_worker_stopped_while_its_broker_does_not_answer_stops_within_its_close_timeout(
        app_id, workers, tmp_path):
    # Its only broker frozen (SIGSTOP) while it counts: the last commit and the clients'
    # closes wait at most STREAMKIT_CLOSE_TIMEOUT_MS each (aiokafka's group member looks
    # for its coordinator for as long as no broker answers). Nothing is lost: the next
    # worker counts exactly, the records since the last commit again.
    with start_kafka(1, data_dir=tmp_path / "kafka") as cluster:
        b = cluster.bootstrap
        produce(b, f"{app_id}-events", events(2000))
        env = worker_env(b, tmp_path / "data", COUNTER_APP_ID=app_id,
                         COUNTER_SOURCE=f"{app_id}-events", STREAMKIT_CLOSE_TIMEOUT_MS="3000")
        w = workers(COUNTER, env, "w1")
        w.wait_ready(timeout=90)
        wait_for(lambda: totals(w, KEYS) == expected(2000))
        produce(b, f"{app_id}-events", events(20_000, start=2000))
        took = stop_while_frozen(cluster, w)
        # The final commit and the group member's close, 3 s each, and the rest of the stop.
        assert took < 25, (took, w.log_tail())
        w2 = workers(COUNTER, env, "w2")
        w2.wait_ready(timeout=90)
        want = expected(22_000)
        got = wait_for(lambda: (lambda t: t if len(t) == len(KEYS) and all(
            t[k]["count"] >= want[k]["count"] for k in KEYS) else None)(totals(w2, KEYS)),
            timeout=60)
        wait_for(lambda: processed_all(w2, f"{app_id}-events"))
        got = totals(w2, KEYS)
        # At least once: every event counted, and none more than twice (the records since
        # the last commit of offsets are processed again; the changelog writes of the last
        # commit, sent before the freeze, were appended when the broker went on).
        assert all(want[k]["count"] <= got[k]["count"] <= 2 * want[k]["count"] for k in KEYS)


def test_a_service_and_a_gateway_stopped_while_their_broker_does_not_answer_stop_in_time(
        app_id, workers, tmp_path):
    # Their request producers, request and response consumers, restorer and registry reader
    # each wait at most the close timeout, and their offset commits too.
    with start_kafka(1, data_dir=tmp_path / "kafka") as cluster:
        env = worker_env(cluster.bootstrap, tmp_path / "data", STREAMKIT_CLOSE_TIMEOUT_MS="2000",
                         ECHO_APP_ID=app_id, ECHO_TOPIC=f"{app_id}-echo",
                         COUNTED_TOPIC=f"{app_id}-counted",
                         STREAMKIT_GATEWAY_ID=f"{app_id}-gw",
                         STREAMKIT_GATEWAY_SERVICES=f"echo={app_id}-echo",
                         STREAMKIT_REGISTRY_TOPIC=f"{app_id}-registry")
        service = workers(ECHO, env, "echo")
        service.wait_ready(timeout=90)
        took = stop_while_frozen(cluster, service)
        assert took < 20, (took, service.log_tail())
        gateway = workers(FRONT, {**env, "STREAMKIT_WEB_PORT": str(free_port()),
                                  "STREAMKIT_DATA_DIR": str(tmp_path / "gw")}, "gw")
        gateway.wait_ready(timeout=90)
        took = stop_while_frozen(cluster, gateway)
        assert took < 20, (took, gateway.log_tail())


def test_under_shutdown_app_a_worker_that_may_no_longer_read_asks_the_app_to_stop(
        app_id, workers, tmp_path):
    # A DENY on reading its source: the commit of its offsets is refused (the error that
    # comes first), the uncaught-error policy asks the app to stop through the group, once,
    # and the worker stops with the app's shutdown.
    with kafka_with_acls(tmp_path) as (cluster, login):
        admin = cluster.bootstrap
        w = counting_as_app(cluster, login, app_id, workers, tmp_path,
                            STREAMKIT_ON_UNCAUGHT_ERROR="shutdown_app")
        asyncio.run(grant(admin, (TOPIC, f"{app_id}-events", READ, DENY)))
        wait_for(lambda: not w.alive(), timeout=90)
        assert w.returncode != 0
        log = w.log_tail(400_000)
        assert "TopicAuthorizationFailedError" in log
        assert f"asked every worker of {app_id} to stop" in log
        assert log.count("every worker of") < 10, "the request was made again and again"
