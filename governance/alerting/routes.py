"""Where alerts go and how often: destinations by route, grouping, repeats, escalation, auto-resolve.

Plain data, passed explicitly to every lifecycle function (built by
:meth:`governance.alerting.delivery.destinations.Destinations.alerting_config` from the configured destinations).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class EscalationStep:
    """While unacknowledged ``after_s`` seconds after the first notification, also notify ``to``."""

    after_s: float
    to: str


@dataclass(frozen=True, slots=True)
class RoutePolicy:
    """How alerts routed to one destination are grouped, repeated and escalated."""

    group_by: tuple[str, ...] = ()
    group_wait_s: float = 0.0
    group_interval_s: float = 300.0
    repeat_interval_s: float | None = None
    escalation: tuple[EscalationStep, ...] = ()


@dataclass(frozen=True, slots=True)
class AlertingConfig:
    """Destinations by route name (``pagerduty:ml-oncall``, ``webhook:ml-ops``, ``default`` …) and
    lifecycle timings. A route without a destination falls back to ``default_route``; the route
    ``log`` means record only."""

    routes: Mapping[str, RoutePolicy] = field(default_factory=dict)
    default_route: str | None = "default"
    resolve_after_s: float | None = None

    def destination_for(self, route: str | None) -> str | None:
        """The destination an alert of ``route`` is sent to (None: record only)."""
        if route == "log":
            return None
        if route and route in self.routes:
            return route
        if self.default_route and self.default_route in self.routes:
            return self.default_route
        return None

    def unrouted_reason(self, route: str | None) -> str | None:
        """Why an alert of ``route`` reaches no destination (None when it does, or when the route is ``log``,
        which records by design)."""
        if route == "log" or self.destination_for(route) is not None:
            return None
        fallback = (f"the default route {self.default_route!r} is not a configured destination either"
                    if self.default_route else "there is no default route")
        return (f"no destination is configured for route {route or 'default'!r} and {fallback}: the alert is "
                "recorded but nobody is notified (configure WARDEN_ALERT_DESTINATIONS)")

    def unrouted(self, routes: Iterable[str]) -> list[str]:
        """The routes among ``routes`` whose alerts would reach no destination."""
        return sorted({r for r in routes if self.unrouted_reason(r) is not None})

    def policy(self, destination: str) -> RoutePolicy:
        return self.routes.get(destination) or RoutePolicy()
