"""Run Apache Kafka (KRaft) on 127.0.0.1 for local use: `streamkit kafka`, or `start_kafka()`.

The jars come from Maven Central once, through the pom shipped as streamkit/data/kafka-pom.xml,
into `<cache>/streamkit/kafka-<version>/libs`; later starts need no network. Each node is one
JVM (broker and controller in one process, heap bounded: 512 MB by default) that this process
starts and stops by its PID. `jit="quick"` (the default) runs the JVM with C1 only, which
starts fast on busy cores (tests, `streamkit dev`); `jit="full"` keeps C2 for peak broker
throughput (benchmarks, where the broker must not be the bottleneck).

Nodes listen for clients on PLAINTEXT://127.0.0.1:<node.port>, which readiness checks use, so
keep that listener when overriding properties. An extra listener needs per-node values, so
`overrides` may be a function of the node:

    ssl = {i: free_port() for i in range(nodes)}
    start_kafka(nodes, overrides=lambda n: {
        "listeners": f"PLAINTEXT://127.0.0.1:{n.port},CONTROLLER://127.0.0.1:{n.controller_port},"
                     f"SSL://127.0.0.1:{ssl[n.node_id]}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{n.port},SSL://127.0.0.1:{ssl[n.node_id]}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SSL:SSL",
        "ssl.keystore.type": "PEM", "ssl.keystore.location": "key-and-cert.pem"})
"""
from __future__ import annotations

import base64
import fcntl
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable, Mapping
from xml.sax.saxutils import escape

from .devbroker import free_port, metadata_brokers, port_in_use
from .errors import BrokerStartError

DEFAULT_VERSION = "4.4.0"
DEFAULT_HEAP_MB = 512
JIT_MODES = ("quick", "full")
HOST = "127.0.0.1"
INSTALL_HINT = ("install Java 17 or newer and Maven (Debian/Ubuntu: apt-get install "
                "openjdk-17-jre-headless maven; macOS: brew install openjdk@17 maven)")
# Readiness probes ask Metadata v4 for no topics: v0 would list every topic on each poll.
METADATA_VERSION = 4

# Extra or replaced server properties: the same for every node, or a function of the node
# (for values that differ per node, such as listeners: see the module docstring).
Overrides = Mapping[str, object] | Callable[["KafkaNode"], Mapping[str, object]]

_LOG4J2 = """<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by streamkit for one Kafka node: INFO to the node's log, at most {max_mb} MB x 2. -->
<Configuration status="warn">
  <Appenders>
    <RollingFile name="node" fileName="{log}" filePattern="{log}.%i" append="true">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <Policies><SizeBasedTriggeringPolicy size="{max_mb} MB"/></Policies>
      <DefaultRolloverStrategy max="1"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Root level="INFO"><AppenderRef ref="node"/></Root>
    <!-- A full config dump per component and start, one line per request or state change:
         far too much for a local broker (server.properties holds the settings). -->
    <Logger name="org.apache.kafka.common.config.AbstractConfig" level="WARN"/>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="state.change.logger" level="WARN"/>
    <Logger name="kafka.network.RequestChannel$" level="WARN"/>
  </Loggers>
</Configuration>
"""


def cache_dir(version: str = DEFAULT_VERSION) -> Path:
    """Where the jars of one Kafka version are assembled ($XDG_CACHE_HOME or ~/.cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "streamkit" / f"kafka-{version}"


def find_java() -> str:
    """Path of a Java 17+ `java` ($JAVA_HOME/bin/java, else the one on PATH)."""
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else None
    if not java or not os.access(java, os.X_OK):
        java = shutil.which("java")
    if not java:
        raise BrokerStartError(f"java not found (no $JAVA_HOME/bin/java, none on PATH): "
                               f"{INSTALL_HINT}")
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BrokerStartError(f"could not run {java} -version ({exc}): {INSTALL_HINT}") from exc
    text = out.stderr + out.stdout
    m = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    major = 0 if m is None else int(m.group(2) or 0) if m.group(1) == "1" else int(m.group(1))
    if major < 17:
        found = text.strip().splitlines()[0] if text.strip() else "unknown version"
        raise BrokerStartError(f"{java} is too old ({found}); Apache Kafka 4 needs Java 17 or "
                               f"newer: {INSTALL_HINT}")
    return java


def kafka_libs(version: str = DEFAULT_VERSION,
               on_download: Callable[[str], None] | None = None) -> Path:
    """The directory of Kafka jars: $STREAMKIT_KAFKA_HOME, or the cache, assembled once by Maven."""
    home = os.environ.get("STREAMKIT_KAFKA_HOME")
    if home:
        libs = Path(home).expanduser()
        if not any(libs.glob("kafka_2.13-*.jar")):
            raise BrokerStartError(f"STREAMKIT_KAFKA_HOME={home} holds no kafka_2.13-*.jar; "
                                   "point it at a directory of Kafka jars or unset it")
        return libs
    root = cache_dir(version)
    libs, done = root / "libs", root / "complete"
    if done.exists() and libs.is_dir():
        return libs
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "lock", "w") as lock:
        # Another process may be assembling the same version: wait for it, then use its work.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (done.exists() and libs.is_dir()):
            _assemble(version, root, on_download)
    return libs


def _assemble(version: str, root: Path, on_download: Callable[[str], None] | None) -> None:
    mvn = shutil.which("mvn")
    if not mvn:
        raise BrokerStartError(f"mvn not found on PATH; Maven fetches Apache Kafka {version} from "
                               f"Maven Central once: {INSTALL_HINT}")
    if on_download:
        on_download(f"downloading Apache Kafka {version} from Maven Central into {root} "
                    "(once; about 45 MB)")
    pom = root / "pom.xml"
    pom.write_bytes(resources.files("streamkit").joinpath("data/kafka-pom.xml").read_bytes())
    # Maven writes into a staging folder, renamed only once every jar is there.
    staging, libs, log_path = root / "libs.partial", root / "libs", root / "mvn.log"
    (root / "complete").unlink(missing_ok=True)
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(libs, ignore_errors=True)
    cmd = [mvn, "-q", "-B", "-f", str(pom), f"-Dkafka.version={version}",
           "dependency:copy-dependencies", f"-DoutputDirectory={staging}"]
    try:
        with open(log_path, "wb") as out:
            rc = subprocess.run(cmd, cwd=root, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, timeout=1800).returncode
    except subprocess.TimeoutExpired:
        rc = -1
    if rc != 0 or not any(staging.glob(f"kafka_2.13-{version}.jar")):
        raise BrokerStartError(f"Maven could not fetch Apache Kafka {version} (exit {rc}; is "
                               f"Maven Central reachable and {version} a Kafka release?): "
                               f"{_tail(log_path)}")
    staging.rename(libs)
    (root / "complete").write_text(f"{version}\n")


def libs_version(libs: Path) -> str | None:
    """The Kafka version of a directory of Kafka jars."""
    jars = sorted(libs.glob("kafka_2.13-*.jar"))
    return jars[0].name[len("kafka_2.13-"):-len(".jar")] if jars else None


@dataclass
class KafkaNode:
    """One combined broker+controller JVM of a KafkaCluster."""

    node_id: int
    port: int
    controller_port: int
    dir: Path
    _proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        return self.dir / "server.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _signal(self, sig: int) -> None:
        if self.alive():
            assert self._proc is not None
            os.kill(self._proc.pid, sig)

    def _stop(self, deadline: float) -> None:
        """Wait for a JVM sent SIGTERM until the deadline, then SIGKILL it."""
        if self._proc is None:
            return
        try:
            self._proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self._proc.wait()


@dataclass
class KafkaCluster:
    """Apache Kafka nodes that this process started; stop() ends them by PID."""

    version: str
    nodes: list[KafkaNode]
    data_dir: Path
    heap_mb: int
    _java: str = field(repr=False)
    _libs: Path = field(repr=False)
    _temp: bool = field(default=False, repr=False)
    jit: str = "quick"

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes)

    @property
    def url(self) -> str:
        """The cluster as STREAMKIT_BROKER names it: kafka://h:p,kafka://h:p."""
        return ",".join(f"kafka://{n.bootstrap}" for n in self.nodes)

    @property
    def pids(self) -> list[int]:
        return [n.pid for n in self.nodes if n.pid is not None]

    def node(self, node_id: int) -> KafkaNode:
        for n in self.nodes:
            if n.node_id == node_id:
                return n
        raise KeyError(f"no Kafka node {node_id}")

    def __enter__(self) -> KafkaCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _launch(self, n: KafkaNode) -> None:
        cmd = [self._java, f"-Xms{self.heap_mb}m", f"-Xmx{self.heap_mb}m",
               "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
               # jit="quick": C1 only. C2's compiler threads compete with the start-up for CPU
               # (a 3-node start on 2 busy cores took 40 s with C2, 11 to 20 s without); a
               # local broker for tests does not need peak throughput. jit="full" keeps C2.
               *(["-XX:TieredStopAtLevel=1"] if self.jit == "quick" else []),
               # Log4j would otherwise stop at SIGTERM, before Kafka logs its own shutdown.
               "-Dlog4j2.shutdownHookEnabled=false",
               f"-Dlog4j2.configurationFile={n.dir / 'log4j2.xml'}",
               "-cp", f"{self._libs}/*", "kafka.Kafka", str(n.dir / "server.properties")]
        # The JVM's own output (a crash, a bad flag) goes to the same file as log4j's lines.
        with open(n.log_path, "ab") as out:
            n._proc = subprocess.Popen(cmd, cwd=n.dir, stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until every node answers Metadata listing every node (all registered, unfenced)."""
        deadline = time.monotonic() + timeout
        while True:
            for n in self.nodes:
                if not n.alive():
                    code = n._proc.returncode if n._proc else None
                    raise BrokerStartError(f"Kafka node {n.node_id} exited with code {code}: "
                                           f"{_tail(n.log_path)}")
            counts = [metadata_brokers(HOST, n.port, api_version=METADATA_VERSION)
                      for n in self.nodes]
            if all(c == len(self.nodes) for c in counts):
                return
            if time.monotonic() > deadline:
                tails = "\n".join(f"node {n.node_id} ({n.log_path}): {_tail(n.log_path)}"
                                  for n in self.nodes)
                raise BrokerStartError(f"Apache Kafka was not ready within {timeout:g}s "
                                       f"(brokers seen per node: {counts}):\n{tails}")
            time.sleep(0.2)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM every node's JVM, SIGKILL those still running after the timeout."""
        for n in self.nodes:
            n._signal(signal.SIGCONT)  # a paused JVM would not act on SIGTERM
            n._signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for n in self.nodes:
            n._stop(deadline)
        if self._temp:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def kill(self, node_id: int) -> None:
        """SIGKILL one node, as a crash would."""
        n = self.node(node_id)
        n._signal(signal.SIGKILL)
        if n._proc is not None:
            n._proc.wait()

    def pause(self, node_id: int) -> None:
        """SIGSTOP one node: it holds its sockets but answers nothing, like a long GC pause."""
        self.node(node_id)._signal(signal.SIGSTOP)

    def resume(self, node_id: int) -> None:
        """SIGCONT a paused node."""
        self.node(node_id)._signal(signal.SIGCONT)

    def restart(self, node_id: int, timeout: float = 60.0) -> None:
        """Start one node again (stopping it first if it runs), same ports and data; wait for it."""
        n = self.node(node_id)
        if n.alive():
            n._signal(signal.SIGCONT)
            n._signal(signal.SIGTERM)
            n._stop(time.monotonic() + 30.0)
        self._launch(n)
        self.wait_ready(timeout)


def start_kafka(nodes: int = 1, port: int | None = None, data_dir: str | Path | None = None,
                version: str = DEFAULT_VERSION, heap_mb: int = DEFAULT_HEAP_MB,
                overrides: Overrides | None = None, timeout: float = 60.0,
                on_download: Callable[[str], None] | None = None,
                jit: str = "quick") -> KafkaCluster:
    """Start `nodes` KRaft nodes on 127.0.0.1 (JVM heap heap_mb each) and wait until they serve.
    jit: "quick" (C1 only, fast start) or "full" (C2 too, for benchmarks)."""
    if nodes < 1:
        raise ValueError("nodes must be at least 1")
    if jit not in JIT_MODES:
        raise ValueError(f"jit must be one of {JIT_MODES}, not {jit!r}")
    java = find_java()
    libs = kafka_libs(version, on_download)
    version = libs_version(libs) or version
    ports = _client_ports(nodes, port)
    controller_ports = _free_ports(nodes, taken=set(ports))
    temp = data_dir is None
    root = (Path(data_dir).resolve() if data_dir is not None
            else Path(tempfile.mkdtemp(prefix="streamkit-kafka-")))
    cluster_id = _cluster_id(root, nodes)
    members = [KafkaNode(i, ports[i], controller_ports[i], root / f"node-{i}")
               for i in range(nodes)]
    voters = ",".join(f"{n.node_id}@{HOST}:{n.controller_port}" for n in members)
    cluster = KafkaCluster(version, members, root, heap_mb, java, libs, temp, jit)
    try:
        for n in members:
            n.dir.mkdir(parents=True, exist_ok=True)
            extra = overrides(n) if callable(overrides) else overrides or {}
            props = {**_node_props(n, voters, nodes), **extra}
            (n.dir / "server.properties").write_text(
                "".join(f"{k}={_prop(v)}\n" for k, v in props.items()))
            log = escape(str(n.log_path), {'"': "&quot;"})
            (n.dir / "log4j2.xml").write_text(_LOG4J2.format(log=log, max_mb=20))
        _format(java, libs, cluster_id, [n for n in members
                                         if not (n.dir / "data" / "meta.properties").exists()])
        for n in members:
            cluster._launch(n)
        cluster.wait_ready(timeout)
    except BaseException:
        cluster.stop(timeout=10.0)
        raise
    return cluster


def _node_props(n: KafkaNode, voters: str, nodes: int) -> dict[str, object]:
    # Three nodes keep three copies and accept acks=all with two in sync: one may be down.
    replicas = min(nodes, 3)
    min_isr = 2 if nodes >= 3 else 1
    return {
        "node.id": n.node_id,
        "process.roles": "broker,controller",
        "listeners": f"PLAINTEXT://{HOST}:{n.port},CONTROLLER://{HOST}:{n.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{n.port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "controller.quorum.voters": voters,
        "log.dirs": n.dir / "data",
        # streamkit creates every topic it needs; a typo must not create one silently.
        "auto.create.topics.enable": "false",
        # A local group should form at once, and accept streamkit's 4 s dev session timeout.
        "group.initial.rebalance.delay.ms": 0,
        "group.min.session.timeout.ms": 1000,
        # The default 50 offsets partitions make the first group join take seconds.
        "offsets.topic.num.partitions": 4,
        "offsets.topic.replication.factor": replicas,
        "transaction.state.log.num.partitions": 4,
        "transaction.state.log.replication.factor": replicas,
        "transaction.state.log.min.isr": min_isr,
        "share.coordinator.state.topic.replication.factor": replicas,
        "share.coordinator.state.topic.min.isr": min_isr,
        "default.replication.factor": replicas,
        "min.insync.replicas": min_isr,
        "num.partitions": 1,
    }


def _prop(value: object) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if "\n" in text:
        raise ValueError(f"a Kafka property value cannot hold a newline: {text!r}")
    return text.replace("\\", "\\\\")  # backslash is the escape of .properties files


def _client_ports(nodes: int, port: int | None) -> list[int]:
    """With a given port P the nodes listen on P, P+1, ...; otherwise on free ports."""
    if port is None:
        return _free_ports(nodes, taken=set())
    ports = [port + i for i in range(nodes)]
    for p in ports:
        if port_in_use(HOST, p):
            raise BrokerStartError(f"port {HOST}:{p} is already in use; choose another with --port")
    return ports


def _free_ports(count: int, taken: set[int]) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        p = free_port(HOST)
        if p not in taken and p not in ports:
            ports.append(p)
    return ports


def _cluster_id(root: Path, nodes: int) -> str:
    """The cluster id kept in the data dir (a new random one for a new dir)."""
    saved = root / "cluster.properties"
    if saved.exists():
        props = dict(line.split("=", 1) for line in saved.read_text().split() if "=" in line)
        if int(props.get("nodes", "0")) != nodes:
            raise BrokerStartError(f"{root} holds a {props.get('nodes')}-node cluster; start it "
                                   f"with --nodes {props.get('nodes')} or use another --data dir")
        return props["cluster.id"]
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):  # the storage tool would read a leading '-' as an option
            break
    root.mkdir(parents=True, exist_ok=True)
    saved.write_text(f"cluster.id={cid}\nnodes={nodes}\n")
    return cid


def _format(java: str, libs: Path, cluster_id: str, nodes: list[KafkaNode]) -> None:
    """Format the nodes' storage (skipping formatted ones) at once: each is mostly JVM start."""
    procs = []
    for n in nodes:
        cmd = [java, "-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
               f"-Dlog4j2.configurationFile={n.dir / 'log4j2.xml'}", "-cp", f"{libs}/*",
               "kafka.tools.StorageTool", "format", "--ignore-formatted", "-t", cluster_id,
               "-c", str(n.dir / "server.properties")]
        procs.append((n, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True)))
    failed = []
    for n, proc in procs:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            failed.append(f"node {n.node_id}: {out.decode(errors='replace').strip()[-800:]}")
    if failed:
        raise BrokerStartError("formatting Kafka storage failed:\n" + "\n".join(failed))


def _tail(path: Path, n: int = 1500) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - n))
            # Maven writes colour codes even in batch mode.
            return re.sub(r"\x1b\[[0-9;]*m", "", f.read().decode(errors="replace")).strip()
    except OSError:
        return ""
