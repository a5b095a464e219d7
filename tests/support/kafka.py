"""Start a throwaway single-node Apache Kafka 4.x broker (KRaft) from the jars Maven resolves.

Used by the integration tests and by ``bench/throughput.py``. The jars are cached outside the
repository (``~/.cache/warden/kafka-<version>/libs``); a free port is chosen for each broker.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

KAFKA_VERSION = "4.1.1"
POM = Path(__file__).resolve().parent.parent / "kafka" / "pom.xml"
CACHE = Path(os.environ.get("WARDEN_CACHE_DIR", Path.home() / ".cache" / "warden"))


def free_port() -> int:
    """An unused TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def kafka_libs(version: str = KAFKA_VERSION) -> Path:
    """The folder holding Kafka's jars, resolved through Maven on first use."""
    libs = CACHE / f"kafka-{version}" / "libs"
    marker = libs / ".complete"
    if not marker.exists():
        libs.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "mvn", "-q", "-B", "-f", str(POM), f"-Dkafka.version={version}",
                "dependency:copy-dependencies", f"-DoutputDirectory={libs}",
            ],
            check=True,
        )
        marker.touch()
    return libs


@dataclass
class KafkaBroker:
    """A running broker; ``bootstrap`` is its ``host:port``."""

    bootstrap: str
    process: subprocess.Popen[bytes]
    workdir: Path
    command: tuple[str, ...] = ()
    """How the broker process is started (``resume`` starts it again the same way)."""

    @property
    def port(self) -> int:
        return int(self.bootstrap.rsplit(":", 1)[1])

    def halt(self, *, kill: bool = False) -> None:
        """Stop the broker process (SIGTERM: a controlled shutdown; ``kill``: SIGKILL) and keep its log
        directory, so :meth:`resume` brings the same broker back on the same port with its data."""
        if self.process.poll() is None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def resume(self, timeout_s: float = 90.0) -> None:
        """Start the halted broker again (same port, same log directory: topics, offsets and groups kept)."""
        if self.process.poll() is None:
            return
        log = self.workdir / "kafka.log"
        with open(log, "ab") as out:
            self.process = subprocess.Popen(list(self.command), stdout=out, stderr=subprocess.STDOUT)
        _wait_port(self.port, self.process, log, timeout_s)

    def stop(self) -> None:
        """Stop the broker and remove its log directory."""
        self.halt()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Kafka exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.25)
    raise TimeoutError(f"Kafka did not listen on {port} within {timeout_s}s:\n{log.read_text()[-4000:]}")


def start_kafka(version: str = KAFKA_VERSION, *, timeout_s: float = 90.0, partitions: int = 4) -> KafkaBroker:
    """Format a KRaft log directory and start a combined broker+controller on free ports."""
    libs = kafka_libs(version)
    workdir = Path(tempfile.mkdtemp(prefix="warden-kafka-"))
    port, controller = free_port(), free_port()
    props = workdir / "server.properties"
    props.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{controller}",
                f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
                f"log.dirs={workdir / 'data'}",
                f"num.partitions={partitions}",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=4",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=true",
                "log.flush.interval.messages=9223372036854775807",
            ]
        )
        + "\n"
    )
    classpath = f"{libs}/*"
    java = [
        "java", "-Xms256m", "-Xmx768m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
        f"-Dkafka.logs.dir={workdir / 'logs'}", "-cp", classpath,
    ]
    log = workdir / "kafka.log"
    cluster_id = "-"
    while cluster_id.startswith("-"):  # an id starting with "-" would be read as an option by StorageTool
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    subprocess.run(
        java + ["kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props)],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    command = (*java, "kafka.Kafka", str(props))
    with open(log, "wb") as out:
        proc = subprocess.Popen(list(command), stdout=out, stderr=subprocess.STDOUT)
    broker = KafkaBroker(bootstrap=f"127.0.0.1:{port}", process=proc, workdir=workdir, command=command)
    try:
        _wait_port(port, proc, log, timeout_s)
    except Exception:
        broker.stop()
        raise
    return broker


if __name__ == "__main__":  # manual use: python -m tests.support.kafka
    b = start_kafka()
    print(b.bootstrap, flush=True)
    try:
        b.process.wait()
    except KeyboardInterrupt:
        b.stop()


def committed_lag(bootstrap: str, group: str, topic: str, partitions: int = 4) -> tuple[int, int]:
    """(messages not yet committed, messages committed) of ``topic`` for consumer group ``group``."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        lag = done = 0
        for tp in consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10):
            high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=10)[1]
            at = max(tp.offset, 0)
            lag += high - at
            done += at
        return lag, done
    finally:
        consumer.close()
