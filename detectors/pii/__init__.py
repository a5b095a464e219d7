"""PII detection and redaction: every free-text field is analysed and replaced by its redacted copy.

- :mod:`detectors.pii.detector` — :class:`~detectors.pii.detector.PiiDetector` (batched analysis, redaction
  modes, cache), :class:`~detectors.pii.detector.PiiConfig`, and the ``pii`` finding;
- :mod:`detectors.pii.engine` — Presidio with the windowed spaCy NLP engine;
- :mod:`detectors.pii.patterns` — pattern recognizers (e-mail, phone, card, IBAN, IP, SSN, secrets, addresses);
- :mod:`detectors.pii.names` — person names from context cues and the name gazetteer;
- :mod:`detectors.pii.prefilter` — the cheap test that decides which text needs NER;
- :mod:`detectors.pii.redaction` — overlap resolution and the redaction modes;
- ``data/`` — name lists and word lists (package data, built by ``scripts/build_pii_names.py``).
"""
