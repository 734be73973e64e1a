"""Embedding extraction for evaluation: one forward pass serves every output, and the cache returns it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from melp.data import open_store
from melp.eval.embed import extract_embeddings
from melp.models import MELP


def test_cache_serves_every_output_of_one_pass(micro_model: tuple[Path, Path], tmp_path: Path) -> None:
    store_path, model_dir = micro_model
    model, store = MELP.from_pretrained(model_dir), open_store(store_path)
    idx = np.arange(0, len(store), 2)
    fresh = extract_embeddings(model, store, cache_id="m", indices=idx, progress=False)
    first = extract_embeddings(
        model, store, cache_id="m", indices=idx, keys=("ecg_latent",), cache_dir=tmp_path, progress=False
    )
    assert list(first) == ["ecg_latent"]
    np.testing.assert_allclose(first["ecg_latent"], fresh["ecg_latent"], atol=1e-6)

    def no_forward(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cached extraction ran the model again")

    model.encode_ecg = no_forward  # type: ignore[method-assign,assignment]
    again = extract_embeddings(
        model, store, cache_id="m", indices=idx, keys=("probe_emb",), cache_dir=tmp_path, progress=False
    )
    np.testing.assert_allclose(again["probe_emb"], fresh["probe_emb"], atol=1e-6)
    with pytest.raises(AssertionError, match="ran the model again"):  # other records: a new extraction
        extract_embeddings(model, store, cache_id="m", indices=idx[:3], cache_dir=tmp_path, progress=False)


@pytest.mark.skipif(not torch.cpu._is_amx_tile_supported(), reason="bf16 autocasts on the CPU only with AMX")
def test_bf16_embeddings_agree_with_fp32_and_are_cached_apart(micro_model: tuple[Path, Path], tmp_path: Path) -> None:
    from melp.eval.random_baseline import load_eval_model
    from melp.eval.runs import Selection, Settings, embed

    store_path, model_dir = micro_model
    em, store = load_eval_model(str(model_dir)), open_store(store_path)
    sel = Selection(store=store, indices=np.arange(len(store)), name="test")
    fp32 = embed(em, sel, Settings(cache_dir=tmp_path, progress=False))
    bf16 = embed(em, sel, Settings(cache_dir=tmp_path, progress=False, precision="bf16"))
    assert len(list(tmp_path.glob("*.npz"))) == 2  # two cache entries: an fp32 one is never served for bf16
    for key in ("ecg_latent", "probe_emb"):
        assert not np.array_equal(bf16[key], fp32[key])  # the pass did run in bf16
        np.testing.assert_allclose(bf16[key], fp32[key], atol=0.05 * np.abs(fp32[key]).max())
    cosine = (bf16["ecg_latent"] * fp32["ecg_latent"]).sum(axis=1)
    assert cosine.min() > 0.999
