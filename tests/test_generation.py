"""Report generation (spec §2.3): greedy, beam search, sampling, KV cache, EOS and length handling."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from melp.models import MELP
from melp.models.generation import GenerationConfig, generate
from tests.test_models import build_micro_model


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> MELP:
    return build_micro_model(tmp_path_factory.mktemp("gen")).eval()


@pytest.fixture(scope="module")
def ecg() -> torch.Tensor:
    return torch.rand(3, 12, 320, generator=torch.Generator().manual_seed(0))


@pytest.fixture
def eos_prone(model: MELP) -> Iterator[MELP]:
    """The model with the [SEP] logit raised by 3, so that some outputs end before max_length."""
    eos = model.config.text.eos_token_id

    def boost(module: torch.nn.Module, inputs: object, logits: torch.Tensor) -> torch.Tensor:
        return logits + 3.0 * (torch.arange(logits.shape[-1]) == eos)

    handle = model.decoder.text_projection.register_forward_hook(boost)
    yield model
    handle.remove()


def _score(model: MELP, ecg: torch.Tensor, seqs: torch.Tensor) -> torch.Tensor:
    """Summed log-probability of each sequence's generated tokens under teacher forcing."""
    pad = model.config.text.pad_token_id
    model.eval()  # generation scores without dropout
    with torch.no_grad():
        memory = model.encode_ecg(ecg, with_attention=False)["ecg_tokens"]
        states, _ = model.text.step(seqs)
        logp = model.decoder(states[:, :-1], memory).log_softmax(-1)  # (B, t - 1, V)
    token = logp.gather(-1, seqs[:, 1:].unsqueeze(-1)).squeeze(-1)
    return (token * (seqs[:, 1:] != pad)).sum(-1)


@pytest.mark.parametrize("use_cache", [True, False])
def test_beam_with_one_beam_equals_greedy(eos_prone: MELP, ecg: torch.Tensor, use_cache: bool) -> None:
    greedy = eos_prone.generate(ecg, method="greedy", max_length=24, min_length=2, use_cache=use_cache)
    beam = eos_prone.generate(ecg, method="beam", num_beams=1, max_length=24, min_length=2, use_cache=use_cache)
    assert torch.equal(greedy, beam)


@pytest.mark.parametrize("method", ["greedy", "beam", "top_k", "top_p"])
def test_kv_cache_gives_the_same_tokens_as_recomputation(model: MELP, ecg: torch.Tensor, method: str) -> None:
    kwargs = {"method": method, "max_length": 16, "num_beams": 3, "top_k": 5, "top_p": 0.8}
    cached = model.generate(ecg, use_cache=True, generator=torch.Generator().manual_seed(3), **kwargs)
    recomputed = model.generate(ecg, use_cache=False, generator=torch.Generator().manual_seed(3), **kwargs)
    assert torch.equal(cached, recomputed)


@pytest.mark.parametrize("method", ["greedy", "beam", "top_k", "top_p"])
def test_outputs_end_in_eos_or_hit_max_length(eos_prone: MELP, ecg: torch.Tensor, method: str) -> None:
    cfg = eos_prone.config.text
    ended = 0
    for seed in range(4):
        out = eos_prone.generate(
            ecg, method=method, max_length=20, min_length=4, top_k=20, generator=torch.Generator().manual_seed(seed)
        )
        assert out.dtype == torch.long and out.shape[1] <= 20
        assert torch.all(out[:, 0] == cfg.bos_token_id)
        for row in out.tolist():
            body = row[1:]
            if cfg.eos_token_id in body:
                end = body.index(cfg.eos_token_id)
                assert end + 2 >= 4, "min_length violated"
                assert all(t == cfg.pad_token_id for t in body[end + 1 :])
                body = body[:end]
                ended += 1
            else:
                assert len(row) == 20
            assert not set(body) & set(cfg.special_token_ids), "special token generated"
    assert ended > 0, "no output ended in [SEP]; the test cannot tell EOS handling apart"


def test_beam_search_scores_at_least_greedy(eos_prone: MELP, ecg: torch.Tensor) -> None:
    # without length normalisation, a wider beam never loses to the greedy path on equal-length outputs
    greedy = eos_prone.generate(ecg, method="greedy", max_length=6, min_length=6)
    beam = eos_prone.generate(ecg, method="beam", num_beams=4, max_length=6, min_length=6, length_penalty=0.0)
    assert greedy.shape == beam.shape == (3, 6)
    assert torch.all(_score(eos_prone, ecg, beam) >= _score(eos_prone, ecg, greedy) - 1e-5)


def test_top_k_one_is_greedy_and_sampling_is_seeded(model: MELP, ecg: torch.Tensor) -> None:
    greedy = model.generate(ecg, method="greedy", max_length=12)
    assert torch.equal(model.generate(ecg, method="top_k", top_k=1, max_length=12), greedy)
    a = model.generate(ecg, method="top_p", top_p=0.95, max_length=12, generator=torch.Generator().manual_seed(7))
    b = model.generate(ecg, method="top_p", top_p=0.95, max_length=12, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    assert not torch.equal(a, greedy)


def test_generation_restores_training_mode_and_validates(model: MELP, ecg: torch.Tensor) -> None:
    model.train()
    model.generate(ecg, method="greedy", max_length=4)
    assert model.training
    model.eval()
    with pytest.raises(ValueError, match="unknown generation method"):
        generate(model, ecg, config=GenerationConfig(method="nucleus"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_length"):
        model.generate(ecg, max_length=1)
    with pytest.raises(ValueError, match=r"text\.max_length"):
        model.generate(ecg, max_length=model.config.text.max_length + 1)
