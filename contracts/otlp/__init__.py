"""OpenTelemetry traces in: OTLP ``ExportTraceServiceRequest`` payloads decoded into spans
(:mod:`contracts.otlp.spans`) and LLM spans mapped onto inference events (:mod:`contracts.otlp.mapping`).

Pure functions, no I/O: the governance API's ``POST /v1/traces`` (``api.routes.otlp``) feeds bytes in and
publishes the events that come out; the benchmark ``bench/otlp.py`` measures the same path alone."""

from contracts.otlp.mapping import SpanOutcome, map_span, map_spans
from contracts.otlp.spans import OtlpDecodeError, Span, decode_json, decode_protobuf

__all__ = ["OtlpDecodeError", "Span", "SpanOutcome", "decode_json", "decode_protobuf", "map_span", "map_spans"]
