"""Security detectors on live traffic: prompt injection / jailbreaks and toxicity (issue 21).

:mod:`.normalize` undoes obfuscation, :mod:`.lexical` scores word n-grams, :mod:`.model` combines them with a
head on the stream's MiniLM embedding into a calibrated score, :mod:`.detector` holds the two detectors and the
event scanner, :mod:`.monitor` the per-model windows (attack rate, toxic-response rate, by cohort) and the
toxic-response regression test after deployments. Model files are package data trained by
``scripts/security/train.py`` from the sources in ``scripts/security/SOURCES.md``.
"""

from detectors.security.detector import (
    InjectionDetector,
    Scan,
    SecurityConfig,
    SecurityScanner,
    ToxicityDetector,
    security_finding,
    severity_of,
)
from detectors.security.model import Prepared, Verdict, prepare
from detectors.security.monitor import SecurityMonitor, SecurityWindowConfig

__all__ = [
    "InjectionDetector",
    "Prepared",
    "Scan",
    "SecurityConfig",
    "SecurityMonitor",
    "SecurityScanner",
    "SecurityWindowConfig",
    "ToxicityDetector",
    "Verdict",
    "prepare",
    "security_finding",
    "severity_of",
]
