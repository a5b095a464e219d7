"""What the detectors measure on an event: tabular features and sentence embeddings.

- :mod:`detectors.features.tabular` — lengths, token counts, latency, cost, finish reason, refusal, script;
- :mod:`detectors.features.embeddings` — MiniLM sentence embeddings (:class:`MiniLMEmbedder`), device-agnostic;
- :mod:`detectors.features.embeddings_onnx` — the int8 ONNX Runtime path the stream uses on CPU.
"""
