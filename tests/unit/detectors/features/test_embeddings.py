"""MiniLM embedder on the real bundled model (offline): shape, norm, order, semantics, parity."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from detectors.features.embeddings import EMBEDDING_DIM, EmbedderConfig, MiniLMEmbedder, model_dir  # noqa: E402


@pytest.fixture(scope="module")
def embedder():
    return MiniLMEmbedder(EmbedderConfig(device="cpu", max_tokens=128, batch_size=4))


def test_model_files_come_from_the_installed_package():
    path = model_dir()
    assert "site-packages" in str(path) and (path / "model.safetensors").exists()


def test_shape_norm_and_input_order(embedder):
    texts = ["short", "a somewhat longer sentence about the weather today", "", "x " * 200]
    vecs = embedder.embed(texts)
    assert vecs.shape == (4, EMBEDDING_DIM) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    # length-sorted batching must not reorder the output
    again = np.stack([embedder.embed([t])[0] for t in texts])
    assert np.allclose(vecs, again, atol=1e-4)
    assert embedder.embed([]).shape == (0, EMBEDDING_DIM)


def test_semantics(embedder):
    a, b, c = embedder.embed(["How do I bake sourdough bread?", "What is a good recipe for sourdough loaf?",
                              "How do I file my income tax return?"])
    assert float(a @ b) > float(a @ c) + 0.2


def test_matches_sentence_transformers_reference(embedder):
    st = pytest.importorskip("sentence_transformers")
    ref = st.SentenceTransformer(str(model_dir()), device="cpu").encode(
        ["The quick brown fox jumps over the lazy dog."], normalize_embeddings=True)
    mine = embedder.embed(["The quick brown fox jumps over the lazy dog."])
    assert np.abs(ref - mine).max() < 1e-4


@pytest.mark.slow  # loads a second (quantised) model
def test_int8_quantised_stays_close(embedder):
    q = MiniLMEmbedder(EmbedderConfig(device="cpu", quantize_int8=True))
    texts = ["Refunds are processed within five business days.", "Our office opens at 9am on Mondays."]
    cos = np.sum(q.embed(texts) * embedder.embed(texts), axis=1)
    assert np.all(cos > 0.9)


# --- ONNX Runtime backend -----------------------------------------------------------------------------

_TOPICS = {
    "billing": ["Why was I charged twice for my {x} subscription this month?",
                "How do I update the card on my {x} plan?", "Can you send me an invoice for the {x} order?",
                "My refund for the {x} purchase has not arrived.",
                "Which {x} plan includes priority support and a lower fee?"],
    "cooking": ["How long should I roast a {x} chicken in the oven?",
                "What can I use instead of buttermilk in {x} pancakes?",
                "How do I keep {x} pasta from sticking together?", "Is it safe to refreeze thawed {x} shrimp?",
                "What spices go well with {x} lentil soup?"],
    "travel": ["What is the cheapest way to get from the airport to {x} downtown?", "Do I need a visa to visit {x}?",
               "Which neighbourhood in {x} is best for a first trip?", "How many days should I spend in {x}?",
               "Is the train from {x} to the coast worth it?"],
}
_FILLERS = ["basic", "premium", "family", "spicy", "frozen", "Lisbon", "Kyoto", "yearly", "small", "old"]


def _texts(topic: str, n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    pool = _TOPICS[topic]
    return [pool[rng.integers(len(pool))].format(x=_FILLERS[rng.integers(len(_FILLERS))]) for _ in range(n)]


def _varied_texts() -> list[str]:
    rng = np.random.default_rng(11)
    words = "the a refund model server latency invoice recipe oven train visa error token python sql".split()
    out = [t for topic in _TOPICS for t in _TOPICS[topic]]
    out += ["", "ok", "Ünïcödé text — with dashes… and emoji 🙂", "x " * 300, "SELECT * FROM users WHERE id = 7;"]
    out += [" ".join(rng.choice(words, size=int(k))) for k in rng.integers(3, 90, size=40)]
    return out


@pytest.fixture(scope="session")
def onnx_build(tmp_path_factory):
    """Two workers build the int8 ONNX model into one fresh cache directory at the same time."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import threading

    from detectors.features.embeddings_onnx import ExportOptions, ensure_model

    cache = tmp_path_factory.mktemp("onnx-cache")
    results, errors = [], []

    def worker() -> None:
        try:
            results.append(ensure_model(model_dir(), ExportOptions(), cache))
        except Exception as exc:  # pragma: no cover - reported by the test below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return cache, results, errors


@pytest.fixture(scope="session")
def onnx_embedder(onnx_build):
    cache, _, _ = onnx_build
    return MiniLMEmbedder(EmbedderConfig(backend="onnx", quantize_int8=True, max_tokens=128, batch_size=4,
                                         threads=1, onnx_cache_dir=str(cache)))


def test_concurrent_first_use_exports_once_and_leaves_one_complete_file(onnx_build):
    cache, results, errors = onnx_build
    assert errors == []
    paths = {p for p, _ in results}
    assert len(paths) == 1 and sorted(built for _, built in results) == [False, True]
    path = paths.pop()
    assert path.parent.parent == cache and path.stat().st_size > 10_000_000
    # only the final file and its options remain: no temporary export directories left behind
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.onnx", "options.json"]
    assert [p.name for p in cache.iterdir() if p.name.startswith(".export-")] == []


def test_onnx_int8_matches_torch_fp32(embedder, onnx_embedder):
    texts = _varied_texts()
    cos = np.sum(onnx_embedder.embed(texts) * embedder.embed(texts), axis=1)
    assert cos.min() > 0.95 and np.median(cos) > 0.98


def test_onnx_shape_norm_order_and_empty_input(onnx_embedder):
    texts = ["short", "a somewhat longer sentence about the weather today", "", "x " * 200,
             "How do I file my income tax return?"]
    vecs = onnx_embedder.embed(texts)
    assert vecs.shape == (5, EMBEDDING_DIM) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    single = np.stack([onnx_embedder.embed([t])[0] for t in texts])
    sims = vecs @ single.T  # each row must be closest to its own text embedded alone (order preserved)
    # dynamic int8 quantises activations per batch, so batch-mates move a vector a little (not its meaning)
    assert np.all(np.argmax(sims, axis=1) == np.arange(5)) and np.all(np.diag(sims) > 0.95)
    assert onnx_embedder.embed([]).shape == (0, EMBEDDING_DIM)


def test_second_construction_reuses_the_cached_file(onnx_build, onnx_embedder):
    cache, _, _ = onnx_build
    before = onnx_embedder.onnx.path.stat()
    again = MiniLMEmbedder(onnx_embedder.config)
    assert again.exported is False and again.onnx.path == onnx_embedder.onnx.path
    after = again.onnx.path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    texts = ["Refunds are processed within five business days.", "Our office opens at 9am on Mondays."]
    assert np.allclose(again.embed(texts), onnx_embedder.embed(texts), atol=1e-6)


def test_cache_key_depends_on_options(onnx_build):
    from detectors.features.embeddings_onnx import ExportOptions, cache_key

    options = (ExportOptions(), ExportOptions(per_channel=False), ExportOptions(quantize_int8=False),
               ExportOptions(reduce_range=True))
    keys = {cache_key(model_dir(), o) for o in options}
    assert len(keys) == 4 and cache_key(model_dir(), ExportOptions()) == cache_key(model_dir(), ExportOptions())


def test_onnx_embeddings_still_catch_a_topic_shift_with_mmd(onnx_embedder):
    from detectors.drift.mmd import mmd_test

    ref = onnx_embedder.embed(_texts("billing", 120, 1))
    same = onnx_embedder.embed(_texts("billing", 80, 2))
    shifted = onnx_embedder.embed(_texts("billing", 40, 3) + _texts("cooking", 40, 4))
    assert mmd_test("prompt_embedding", ref, same, n_perm=200, seed=0).p_value > 0.01
    assert mmd_test("prompt_embedding", ref, shifted, n_perm=200, seed=0).p_value < 1e-3


def test_fast_cpu_prefers_onnx_and_falls_back_to_torch_int8(monkeypatch, caplog):
    import detectors.features.embeddings_onnx as eo

    cfg = EmbedderConfig.fast_cpu()
    assert cfg.max_tokens == 48 and cfg.quantize_int8 and cfg.threads == 1
    assert cfg.backend == ("onnx" if eo.onnx_available() else "torch")
    monkeypatch.setattr(eo, "onnx_available", lambda: False)
    with caplog.at_level("WARNING", logger="detectors.features.embeddings"):
        fallback = EmbedderConfig.fast_cpu(threads=2)
    assert fallback.backend == "torch" and fallback.quantize_int8 and fallback.threads == 2
    assert any("fall back to torch" in r.getMessage() for r in caplog.records)


def test_config_rejects_unknown_backend_and_onnx_on_another_device():
    with pytest.raises(ValueError):
        EmbedderConfig(backend="tensorflow")
    with pytest.raises(ValueError):
        EmbedderConfig(backend="onnx", device="mps")
    with pytest.raises(ValueError):
        EmbedderConfig(backend="onnx", dtype="bfloat16")


def test_onnx_tokenizer_gives_the_transformers_ids(onnx_embedder):
    from transformers import AutoTokenizer

    texts = _varied_texts() + ["CJK 漢字 and tabs\tand\nnewlines", "  leading and trailing  "]
    for max_tokens in (16, 128):
        ref = AutoTokenizer.from_pretrained(str(model_dir()), local_files_only=True)(
            texts, truncation=True, max_length=max_tokens, padding=False, return_attention_mask=False)["input_ids"]
        emb = MiniLMEmbedder(EmbedderConfig(**{**vars(onnx_embedder.config), "max_tokens": max_tokens}))
        assert emb.tokenize(texts) == ref


def test_onnx_sessions_take_cuda_only_where_onnx_runtime_has_it():
    import onnxruntime as ort

    from detectors.onnx import onnx_providers

    assert onnx_providers("cpu") == ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert onnx_providers(None)[0] == onnx_providers("cuda")[0] == "CUDAExecutionProvider"
    else:
        assert onnx_providers(None) == ["CPUExecutionProvider"]
        with pytest.raises(ValueError, match="onnxruntime-gpu"):
            onnx_providers("cuda")
