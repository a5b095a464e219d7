"""Pure detectors: plain values in, :class:`~detectors.finding.Finding` objects out.

Nothing in this package knows about Kafka, the database or the web. Each detector is a
small object with bounded state that can be snapshotted (``snapshot()`` / ``restore()``).
"""

from detectors.finding import Finding, Severity, Subject, Window, stable_id

__all__ = ["Finding", "Severity", "Subject", "Window", "stable_id"]
