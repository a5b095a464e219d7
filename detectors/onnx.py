"""Which ONNX Runtime execution providers a detector's session uses: CUDA when the installed ONNX Runtime has it
(the ``onnxruntime-gpu`` package on a machine with an NVIDIA GPU), the CPU otherwise — the same code on both."""

from __future__ import annotations


def onnx_providers(device: str | None = None) -> list[str]:
    """Providers for an ``InferenceSession``: ``device`` ``"cpu"`` forces the CPU; ``"cuda"`` requires CUDA (raises
    when ONNX Runtime has none); None takes CUDA when available, with the CPU behind it for unsupported nodes."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "cuda":
        raise ValueError("device 'cuda' asked for, but ONNX Runtime has no CUDA provider (install onnxruntime-gpu)")
    return ["CPUExecutionProvider"]
