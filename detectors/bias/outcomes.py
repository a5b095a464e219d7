"""Turn event fields into the favourable/unfavourable outcomes the fairness monitor counts.

Each function maps one kind of signal to ``True`` (favourable to the user), ``False``
(unfavourable) or ``None`` (no usable signal: do not count the event). The stream worker
picks the ones its events carry and passes ``kind`` to
:meth:`detectors.bias.fairness.CohortFairnessMonitor.update` accordingly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from detectors.bias.refusal import RefusalDetector, is_refusal

__all__ = ["decision_outcome", "feedback_outcome", "protected_groups", "refusal_outcome"]

_TRUE = {"1", "true", "yes", "y", "up", "thumbs_up", "positive", "success", "approved", "approve", "accept", "accepted"}
_FALSE = {"0", "false", "no", "n", "down", "thumbs_down", "negative", "failure", "fail", "denied", "deny", "reject", "rejected"}


def refusal_outcome(response_text: str | None, detector: RefusalDetector | None = None) -> bool | None:
    """Favourable when the response is not a refusal; None without a response."""
    if response_text is None or not response_text.strip():
        return None
    return not (detector(response_text) if detector is not None else is_refusal(response_text))


def feedback_outcome(
    score: float | None = None, thumbs: object = None, *, favorable_min_score: float = 4.0
) -> bool | None:
    """Favourable for thumbs up, or a rating ≥ ``favorable_min_score`` (thumbs win if both)."""
    if thumbs is not None:
        return decision_outcome(thumbs)
    if score is None:
        return None
    return float(score) >= favorable_min_score


def decision_outcome(value: object) -> bool | None:
    """Read a producer-supplied decision / success label (bool, 0/1 or words like approved/denied)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value == 1
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def protected_groups(attributes: Mapping[str, object] | None, protected: Iterable[str]) -> dict[str, str]:
    """Only the protected attributes of ``user.attributes``, as strings (others are dropped)."""
    if not attributes:
        return {}
    return {a: str(attributes[a]) for a in protected if attributes.get(a) not in (None, "")}
