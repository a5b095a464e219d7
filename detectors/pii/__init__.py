"""PII detection and redaction: every free-text field is analysed and replaced by its redacted copy.

- :mod:`detectors.pii.detector` — :class:`~detectors.pii.detector.PiiDetector` (batched analysis, span merging,
  redaction modes, cache), :class:`~detectors.pii.detector.PiiConfig`, and the ``pii`` finding;
- :mod:`detectors.pii.tagger` — the token tagger for names, places and street addresses (int8 ONNX over
  MiniLM word pieces, shape and gazetteer features);
- :mod:`detectors.pii.patterns` — pattern scanners (e-mail, phone, card, IBAN, IP, SSN, IDs, secrets, street addresses);
- :mod:`detectors.pii.redaction` — overlap resolution and the redaction modes;
- ``data/`` — the tagger model (``pii_tagger.onnx``, built by ``scripts/train_pii_tagger.py``), its word-piece
  vocabulary, the gazetteer (``gazetteer.txt.gz``, built by ``scripts/build_pii_gazetteer.py``) and word lists.
"""
