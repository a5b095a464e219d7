"""MiniLM embedder on the real bundled model (offline): shape, norm, order, semantics, parity."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from detectors.embeddings import EMBEDDING_DIM, EmbedderConfig, MiniLMEmbedder, model_dir  # noqa: E402


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
