"""The Prometheus endpoint of the roles without a web server of their own (stream worker, job worker)."""

from __future__ import annotations

import logging

from prometheus_client import start_http_server

log = logging.getLogger("warden")


def serve(port: int) -> bool:
    """Serve ``/metrics`` on ``port`` (0: not at all) from prometheus-client's own HTTP thread, so a scrape
    never waits on the role's event loop. A port already in use is logged, not fatal."""
    if port <= 0:
        return False
    try:
        start_http_server(port)
    except OSError as exc:
        log.error("metrics endpoint not started", extra={"port": port, "error": str(exc)})
        return False
    log.info("metrics endpoint started", extra={"port": port})
    return True
