"""The security detectors: prompt injection / jailbreak and toxicity, on already PII-redacted text.

* :class:`InjectionDetector` — direct instruction override, system-prompt extraction, role-play jailbreaks
  (DAN-style templates), fake delimiters and instructions hidden in retrieved documents or tool output, and
  the same hidden by encodings (base64, hex, rot13, reversed text, ``\\x`` escapes, URL-encoding), look-alike
  letters, leetspeak, separators and zero-width characters. Categories: ``override``, ``extraction``,
  ``jailbreak``, ``delimiter``, ``indirect``, ``obfuscation``.
* :class:`ToxicityDetector` — abusive text. Categories: ``insult`` (abuse, profanity aimed at someone),
  ``hate`` (identity-based attacks, explicit or implicit), ``harassment`` (bullying, self-harm incitement,
  doxxing threats), ``sexual`` (sexual harassment, explicit sexual remarks), ``threat`` (threats of violence).

:class:`SecurityScanner` applies both to one inference event's texts: injection on the last user message and
on every message that brings outside content into the context (system, developer, tool, function roles),
toxicity on the last user message and the response. Each returns a :class:`~detectors.security.model.Verdict`
(score in [0, 1], flag at the configured threshold, category, redacted evidence). Pure: no I/O; the
caller passes the MiniLM vectors it has (see ``streams.pipeline``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache

import numpy as np

from detectors.finding import Finding, Subject
from detectors.security.model import Prepared, SecurityModel, Verdict, prepare

__all__ = ["SecurityConfig", "InjectionDetector", "ToxicityDetector", "SecurityScanner", "Scan", "severity_of",
           "security_finding"]

#: roles whose content is scanned for injections besides the last user message: content that enters the context
#: from outside (tool and function results, retrieved documents). System/developer prompts are the operator's
#: own instructions ("never reveal these instructions" reads like an extraction attack): opt in with
#: ``SecurityConfig.context_roles``.
CONTEXT_ROLES = ("tool", "function")
#: finding kinds by detector
KINDS = {"injection": "prompt_injection", "toxicity": "toxicity"}


@dataclass(frozen=True)
class SecurityConfig:
    """Thresholds and knobs of the security detectors (mapped from ``WARDEN_SECURITY_*`` settings)."""

    injection_threshold: float = 0.7
    """Flag at this calibrated score: about 1 % false positives on the made held-out benign set (hard
    negatives included) and 1.5-2 % on the public dev benign rows."""
    toxicity_threshold: float = 0.5
    embed_gate: float = 0.1
    """A text without a stream embedding is embedded for the security heads when its lexical injection score
    reaches this: most attacks pass, few benign texts do (dev: 96 % of attacks, 12 % of benign rows)."""
    toxicity_embed_gate: float = 0.3
    """The same for the lexical toxicity score (higher: ordinary comments score higher on the lexical toxicity
    head than ordinary prompts do on the injection head)."""
    context_roles: tuple[str, ...] = CONTEXT_ROLES
    """Message roles besides the last user message scanned for injections."""
    high: float = 0.95
    """Score at or above which a finding is ``high`` (``medium`` from :attr:`medium`, else ``low``)."""
    medium: float = 0.85

    def __post_init__(self) -> None:
        for name in ("injection_threshold", "toxicity_threshold", "embed_gate", "toxicity_embed_gate", "high",
                     "medium"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], not {v}")
        if self.medium > self.high:
            raise ValueError("medium must not exceed high")


def severity_of(score: float, config: SecurityConfig) -> str:
    """Severity of a flagged score: ``high``, ``medium`` or ``low``."""
    if score >= config.high:
        return "high"
    if score >= config.medium:
        return "medium"
    return "low"


@cache
def _model(name: str, threshold: float) -> SecurityModel:
    return SecurityModel.load(name, threshold)


class _Detector:
    name = ""

    def __init__(self, threshold: float) -> None:
        self.model = _model(self.name, threshold)

    def score(self, text: str | Prepared, vector: np.ndarray | None = None) -> Verdict:
        """The verdict on ``text`` (a string or :func:`~detectors.security.model.prepare` output);
        ``vector`` is the text's MiniLM embedding (384 floats) when the caller has one."""
        return self.model.score(text if isinstance(text, Prepared) else prepare(text), vector)


class InjectionDetector(_Detector):
    """Prompt injection and jailbreak detector (see the module docstring)."""

    name = "injection"

    def __init__(self, config: SecurityConfig | None = None) -> None:
        super().__init__((config or SecurityConfig()).injection_threshold)


class ToxicityDetector(_Detector):
    """Toxicity detector (see the module docstring)."""

    name = "toxicity"

    def __init__(self, config: SecurityConfig | None = None) -> None:
        super().__init__((config or SecurityConfig()).toxicity_threshold)


@dataclass(frozen=True, slots=True)
class Scan:
    """One scanned text of an event."""

    detector: str
    """``injection`` or ``toxicity``."""
    field: str
    """Where the text sits: ``messages[i]`` or ``response``."""
    role: str
    """The message role (``response`` for the response)."""
    verdict: Verdict


class SecurityScanner:
    """Both detectors over one event's texts, sharing the normalisation of texts scored twice."""

    def __init__(self, config: SecurityConfig | None = None) -> None:
        self.config = config or SecurityConfig()
        self.injection = InjectionDetector(self.config)
        self.toxicity = ToxicityDetector(self.config)

    def targets(self, roles: Sequence[str], has_response: bool) -> list[tuple[str, str, int | None]]:
        """(detector, role, message index or None for the response) of what :meth:`scan` looks at."""
        out: list[tuple[str, str, int | None]] = []
        users = [i for i, r in enumerate(roles) if r == "user"]
        last_user = users[-1] if users else (len(roles) - 1 if roles else None)
        for i, role in enumerate(roles):
            if i == last_user:
                out.append(("injection", role, i))
                out.append(("toxicity", role, i))
            elif role in self.config.context_roles:
                out.append(("injection", role, i))
        if has_response:
            out.append(("toxicity", "response", None))
        return out

    def gate(self, detector: str) -> float:
        """The lexical score at which a text without a vector is embedded for ``detector``."""
        return self.config.embed_gate if detector == "injection" else self.config.toxicity_embed_gate

    def _model(self, detector: str) -> SecurityModel:
        return self.injection.model if detector == "injection" else self.toxicity.model

    def scan(self, messages: Sequence[tuple[str, str]], response: str | None,
             vectors: Mapping[str, np.ndarray] | None = None) -> list[Scan]:
        """Verdicts for an event: ``messages`` as (role, redacted text), ``response`` the redacted response
        (None: none). ``vectors`` maps a text to its MiniLM embedding where the caller has one."""
        return self.scan_batch([(messages, response)], vectors)[0]

    def scan_batch(self, events: Sequence[tuple[Sequence[tuple[str, str]], str | None]],
                   vectors: Mapping[str, np.ndarray] | None = None,
                   embed: Callable[[list[str]], np.ndarray] | None = None) -> list[list[Scan]]:
        """:meth:`scan` for many events. A scanned text that has no vector in ``vectors`` but whose lexical
        score reaches ``config.embed_gate`` is passed to ``embed`` (one call for the batch, if given) and
        scored with its embedding; every text is normalised and scored lexically once."""
        known: dict[str, np.ndarray] = dict(vectors or {})
        prepared: dict[str, Prepared] = {}
        lexical: dict[tuple[str, str], tuple[np.ndarray, int, tuple[int, int]]] = {}
        todo: list[list[tuple[str, str, str, str]]] = []
        gated: dict[str, None] = {}
        for messages, response in events:
            items = []
            for detector, role, index in self.targets([r for r, _ in messages], response is not None):
                text = response if index is None else messages[index][1]
                if not text or not text.strip():
                    continue
                if text not in prepared:
                    prepared[text] = prepare(text)
                key = (detector, text)
                if key not in lexical:
                    model = self._model(detector)
                    lexical[key] = model.lexical_logit(prepared[text])
                    if (embed is not None and text not in known and model.has_embedding_head
                            and model.lexical_score(lexical[key], prepared[text]) >= self.gate(detector)):
                        gated[text] = None
                items.append((detector, role, "response" if index is None else f"messages[{index}]", text))
            todo.append(items)
        if gated and embed is not None:
            texts = list(gated)
            for text, vec in zip(texts, embed(texts)):
                known[text] = vec
        return [[Scan(detector, field_, role,
                      self._model(detector).score(prepared[text], known.get(text), lexical[(detector, text)]))
                 for detector, role, field_, text in items] for items in todo]


def security_finding(scan: Scan, subject: Subject, event_id: str, occurred_at: datetime,
                     config: SecurityConfig) -> Finding:
    """The per-event finding of a flagged scan (one per detector and field of the event)."""
    v = scan.verdict
    kind = KINDS[scan.detector]
    what = "prompt injection" if scan.detector == "injection" else "toxic text"
    return Finding.create(
        detector="security", kind=kind, subject=subject, severity=severity_of(v.score, config), score=v.score,
        summary=f"{what} ({v.category}) in {scan.field} ({scan.role}), score {v.score:.2f}",
        evidence={"field": scan.field, "role": scan.role, "category": v.category, "lexical_score": v.lexical,
                  "used_embedding": v.used_embedding, **v.evidence},
        event_id=event_id, occurred_at=occurred_at, key=scan.field)
