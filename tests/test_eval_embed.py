"""Embedding extraction for evaluation: one forward pass serves every output, and the cache returns it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

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
