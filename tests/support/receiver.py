"""A signed-webhook receiver as its own process, for the fault harness (``bench/faults.py``) and its tests.

``python -m tests.support.receiver --port P --secret S --log FILE [--slow MIN MAX]`` serves ``POST /hook``:
it checks the Warden signature (401 when it does not verify), optionally sleeps a random time in
``[MIN, MAX]`` seconds (a slow receiver: the sender may time out and send again), then appends one JSON
line per request to ``FILE`` — what it *processed* — and answers 200. Stopping the process is how the
harness makes it refuse connections.

Each line: ``{"at", "delivery", "signature_ok", "alerts": [{"delivery_id", "alert_id", "event", "episode",
"escalation_step", "tenant"}]}``. :func:`read_log` and :func:`shown` turn the log into what a person saw: a
receiver that drops repeats by ``delivery_id`` (the dedup Warden's docs ask of receivers) shows each
notification once; the same notification (alert, episode, event, escalation step) under two *different*
delivery ids would be shown twice.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from governance.alerting.delivery import payloads


def serve(port: int, secret: str, log: Path, slow: tuple[float, float] | None = None) -> None:
    """Serve until killed."""
    lock = threading.Lock()
    rng = random.Random()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            return None

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            ok = payloads.verify_signature(secret, body, self.headers.get(payloads.TIMESTAMP_HEADER),
                                           self.headers.get(payloads.SIGNATURE_HEADER))
            if not ok:
                self._answer(401)
                return
            if slow is not None:
                time.sleep(rng.uniform(*slow))
            data = json.loads(body)
            line = {"at": time.time(), "delivery": self.headers.get(payloads.DELIVERY_HEADER), "signature_ok": ok,
                    "alerts": [{k: a.get(k) for k in ("delivery_id", "alert_id", "event", "episode",
                                                       "escalation_step", "tenant")} for a in data["alerts"]]}
            # processed: written before the answer (a client that gave up will send it again)
            with lock, open(log, "a") as out:
                out.write(json.dumps(line) + "\n")
                out.flush()
                os.fsync(out.fileno())
            self._answer(200)

        def _answer(self, status: int) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:  # the client timed out and closed the connection
                pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever(poll_interval=0.05)


def read_log(log: Path) -> list[dict[str, Any]]:
    """Every notification the receiver processed, in order (one dict per notification, with ``at``)."""
    if not log.exists():
        return []
    out: list[dict[str, Any]] = []
    for line in log.read_text().splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:  # a line cut by a kill mid-write
            continue
        out.extend({**a, "at": entry["at"], "signature_ok": entry["signature_ok"]} for a in entry["alerts"])
    return out


def notification_key(n: dict[str, Any]) -> tuple[Any, ...]:
    """What a person sees as one notification: the alert, its episode, the event and the escalation step."""
    return (n["alert_id"], n.get("episode"), n["event"], n.get("escalation_step"))


def shown(notes: Iterable[dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], int, int]:
    """(first occurrence per delivery id, repeats dropped by delivery id, notifications shown twice or more).

    Repeats of one delivery id are what at-least-once delivery allows (the receiver drops them); the same
    notification under two different delivery ids is a duplicate a person would see."""
    first: dict[str, dict[str, Any]] = {}
    repeats = 0
    for n in notes:
        if n["delivery_id"] in first:
            repeats += 1
        else:
            first[n["delivery_id"]] = n
    per = Counter(notification_key(n) for n in first.values())
    return first, repeats, sum(c - 1 for c in per.values() if c > 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--slow", type=float, nargs=2, metavar=("MIN_S", "MAX_S"))
    args = parser.parse_args()
    serve(args.port, args.secret, args.log, tuple(args.slow) if args.slow else None)


if __name__ == "__main__":
    main()
