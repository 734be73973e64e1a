"""The three MELP losses against hand computations and a plain per-pair loop written from spec §3."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from benchmarks.bench_local_loss import materialised_contexts_loss, reference_local_loss
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from melp.losses import (
    CaptionLoss,
    ClipLoss,
    LocalAlignmentLoss,
    MELPLoss,
    local_alignment_loss,
    local_attention_maps,
)
from melp.losses.local_alignment import _gathered_local_alignment_loss
from melp.train.config import load_pretrain_config


def naive_local_loss(
    beats: torch.Tensor,
    sents: torch.Tensor,
    mask: torch.Tensor,
    temp1: float = 4.0,
    temp2: float = 5.0,
    temp3: float = 10.0,
    agg: str = "sum",
    alpha_scores: str = "dot",
) -> torch.Tensor:
    """Spec §3.2 pair by pair; texts without a sentence are left out (the documented semantics).

    With ``alpha_scores="cosine"`` steps 1–3 use ``Ê_b Ŝ_iᵀ`` (rows divided by their L2 norms);
    steps 4–5 always use the raw beats and sentences.
    """
    n = beats.shape[0]
    valid = [i for i in range(n) if bool(mask[i].any())]
    r = {}
    for b in range(n):
        for i in valid:
            s_i = sents[i][mask[i]]  # (s_i, D)
            if alpha_scores == "cosine":
                scores = (beats[b] / beats[b].norm(dim=-1, keepdim=True)) @ (s_i / s_i.norm(dim=-1, keepdim=True)).T
            else:
                scores = beats[b] @ s_i.T  # (Q, s_i)
            p = scores.softmax(dim=1)  # over sentences
            alpha = (temp1 * p.T).softmax(dim=1)  # (s_i, Q), over beats
            context = alpha @ beats[b]  # (s_i, D)
            cos = (s_i * context).sum(-1) / (s_i.norm(dim=-1) * context.norm(dim=-1)).clamp(min=1e-8)
            terms = torch.exp(temp2 * cos)
            r[b, i] = torch.log(terms.sum() if agg == "sum" else terms.mean())
    total = beats.new_zeros(())
    for j, i in enumerate(valid):
        ecg_to_text = temp3 * torch.stack([r[i, c] for c in valid])  # ECG i against valid texts
        text_to_ecg = temp3 * torch.stack([r[b, i] for b in range(n)])  # text i against all ECGs
        total = total + F.cross_entropy(ecg_to_text, torch.tensor(j)) + F.cross_entropy(text_to_ecg, torch.tensor(i))
    return total / (2 * max(len(valid), 1))


def ragged_batch(
    n: int = 6,
    q: int = 4,
    s: int = 4,
    d: int = 16,
    *,
    counts: list[int] | None = None,
    dtype=torch.float64,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random beats and sentences; padded sentence rows hold NaN, which must never leak."""
    g = torch.Generator().manual_seed(seed)
    beats = torch.randn(n, q, d, generator=g, dtype=dtype)
    sents = torch.randn(n, s, d, generator=g, dtype=dtype)
    counts = counts if counts is not None else [1 + (k % s) for k in range(n)]
    mask = torch.arange(s)[None] < torch.tensor(counts)[:, None]
    sents = sents.masked_fill(~mask[..., None], float("nan"))
    return beats, sents, mask


def test_clip_equals_hand_computed_cross_entropy_3x3() -> None:
    ecg = F.normalize(torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]]), dim=-1)
    text = F.normalize(torch.tensor([[1.0, 0.2], [0.5, 0.9], [-0.3, 1.0]]), dim=-1)
    scale = 2.5
    sim = [[scale * sum(a * b for a, b in zip(e, t, strict=True)) for t in text.tolist()] for e in ecg.tolist()]

    def ce(row: list[float], target: int) -> float:
        return math.log(sum(math.exp(v) for v in row)) - row[target]

    e2t = sum(ce(sim[k], k) for k in range(3)) / 3
    t2e = sum(ce([sim[b][k] for b in range(3)], k) for k in range(3)) / 3
    got = ClipLoss()(ecg, text, torch.tensor(scale))
    assert got.item() == pytest.approx((e2t + t2e) / 2, rel=1e-6)


def test_clip_without_process_group_rejects_world_size_above_one() -> None:
    loss = ClipLoss(rank=1, world_size=2)
    with pytest.raises(RuntimeError, match="world_size=2"):
        loss(torch.eye(2), torch.eye(2), torch.tensor(1.0))
    with pytest.raises(ValueError, match="rank"):
        ClipLoss(rank=2, world_size=2)


def test_caption_loss_ignores_pad_positions() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 7, generator=g)
    labels = torch.tensor([[3, 4, 5, 0, 0], [1, 2, 0, 0, 0]])
    keep = labels != 0
    expected = F.cross_entropy(logits[keep], labels[keep])
    loss = CaptionLoss(pad_id=0)
    assert loss(logits, labels).item() == pytest.approx(expected.item(), rel=1e-6)
    changed = logits.clone()
    changed[~keep] = 100.0
    assert loss(changed, labels).item() == pytest.approx(expected.item(), rel=1e-6)
    assert loss(logits, torch.zeros_like(labels)).item() == 0.0
    with pytest.raises(ValueError, match="pad_id"):
        CaptionLoss(pad_id=-1)
    with pytest.raises(ValueError, match=r"\(B, L, V\)"):
        loss(logits, labels[:, :4])


@pytest.mark.parametrize("agg", ["sum", "mean"])
def test_local_loss_equals_per_pair_loop_with_ragged_sentences(agg: str) -> None:
    beats, sents, mask = ragged_batch(counts=[1, 4, 2, 1, 3, 4])
    beats.requires_grad_(True)
    sents.requires_grad_(True)
    fast = local_alignment_loss(beats, sents, mask, agg=agg)
    fast_grads = torch.autograd.grad(fast, (beats, sents))
    slow = naive_local_loss(beats, sents, mask, agg=agg)
    slow_grads = torch.autograd.grad(slow, (beats, sents), allow_unused=True)
    assert torch.isfinite(fast)
    assert fast.item() == pytest.approx(slow.item(), abs=1e-10)
    torch.testing.assert_close(fast_grads[0], slow_grads[0], atol=1e-10, rtol=1e-8)
    torch.testing.assert_close(fast_grads[1][mask], slow_grads[1][mask], atol=1e-10, rtol=1e-8)
    assert torch.all(fast_grads[1][~mask] == 0)


@pytest.mark.parametrize("agg", ["sum", "mean"])
@pytest.mark.parametrize("counts", [[1, 4, 2, 1, 3, 4], [2, 0, 3, 1, 0, 4], [1] * 6])
def test_cosine_alpha_loss_equals_per_pair_loop(agg: str, counts: list[int]) -> None:
    beats, sents, mask = ragged_batch(counts=counts, seed=7)
    beats = beats * 20.0  # norms like the trained model's, where the dot scores saturate
    beats.requires_grad_(True)
    sents.requires_grad_(True)
    fast = local_alignment_loss(beats, sents, mask, agg=agg, alpha_scores="cosine")
    fast_grads = torch.autograd.grad(fast, (beats, sents))
    slow = naive_local_loss(beats, sents, mask, agg=agg, alpha_scores="cosine")
    slow_grads = torch.autograd.grad(slow, (beats, sents), allow_unused=True)
    assert fast.item() == pytest.approx(slow.item(), abs=1e-10)
    dot = naive_local_loss(beats, sents, mask, agg=agg).item()
    if max(counts) == 1:  # one sentence: P ≡ 1, so α is uniform whatever the scores
        assert fast.item() == pytest.approx(dot, abs=1e-12)
    else:
        assert abs(fast.item() - dot) > 1e-3
    assert torch.isfinite(fast_grads[0]).all() and fast_grads[0].abs().sum() > 0
    torch.testing.assert_close(fast_grads[0], slow_grads[0], atol=1e-10, rtol=1e-8)
    torch.testing.assert_close(fast_grads[1][mask], slow_grads[1][mask], atol=1e-10, rtol=1e-8)
    assert torch.all(fast_grads[1][~mask] == 0)


def test_cosine_alpha_loss_is_zero_without_sentences_and_gathered_form_agrees() -> None:
    beats, sents, mask = ragged_batch(n=3, counts=[0, 0, 0])
    beats.requires_grad_(True)
    loss = local_alignment_loss(beats, sents, mask, alpha_scores="cosine")
    (grad,) = torch.autograd.grad(loss, beats)
    assert loss.item() == 0.0 and torch.all(grad == 0)
    beats, sents, mask = ragged_batch(counts=[2, 0, 3, 1, 4, 4], seed=2)
    options = {"temp1": 4.0, "temp2": 5.0, "temp3": 10.0, "agg": "sum"}
    clean = torch.where(mask[..., None], sents, 0.0)
    for alpha_scores in ("dot", "cosine"):
        # Without a process group the gather is the identity, so the global form is the per-rank loss.
        gathered = _gathered_local_alignment_loss(beats, clean, mask, **options, alpha_scores=alpha_scores, rank=0)
        expected = naive_local_loss(beats, sents, mask, alpha_scores=alpha_scores)
        assert gathered.item() == pytest.approx(expected.item(), abs=1e-10)


def test_local_loss_float32_matches_loop_to_1e5() -> None:
    beats, sents, mask = ragged_batch(n=8, q=12, s=5, d=32, dtype=torch.float32, seed=3)
    beats.requires_grad_(True)
    fast = local_alignment_loss(beats, sents, mask)
    slow = naive_local_loss(beats.double(), sents.double(), mask)
    assert abs(fast.item() - slow.item()) < 1e-5
    (grad_fast,) = torch.autograd.grad(fast, beats)
    (grad_slow,) = torch.autograd.grad(slow, beats)
    torch.testing.assert_close(grad_fast, grad_slow, atol=1e-5, rtol=1e-4)


def test_local_loss_with_every_report_one_sentence() -> None:
    beats, sents, mask = ragged_batch(n=5, s=1, counts=[1] * 5)
    assert local_alignment_loss(beats, sents, mask).item() == pytest.approx(
        naive_local_loss(beats, sents, mask).item(), abs=1e-10
    )


def test_local_loss_drops_texts_without_sentences() -> None:
    beats, sents, mask = ragged_batch(counts=[2, 0, 3, 1, 0, 4])
    beats.requires_grad_(True)
    fast = local_alignment_loss(beats, sents, mask)
    (grad,) = torch.autograd.grad(fast, beats)
    assert fast.item() == pytest.approx(naive_local_loss(beats, sents, mask).item(), abs=1e-10)
    assert torch.isfinite(grad).all()


def test_local_loss_is_zero_when_no_text_has_a_sentence() -> None:
    beats, sents, mask = ragged_batch(n=3, counts=[0, 0, 0])
    beats.requires_grad_(True)
    loss = local_alignment_loss(beats, sents, mask)
    (grad,) = torch.autograd.grad(loss, beats)
    assert loss.item() == 0.0
    assert torch.all(grad == 0)


def test_local_loss_validates_inputs() -> None:
    beats, sents, mask = ragged_batch(n=3)
    with pytest.raises(ValueError, match="bool"):
        local_alignment_loss(beats, sents, mask.long())
    with pytest.raises(ValueError, match="D=16"):
        local_alignment_loss(beats, sents[..., :8], mask)
    with pytest.raises(ValueError, match="temp1"):
        local_alignment_loss(beats, sents, mask, temp1=0.0)
    with pytest.raises(ValueError, match="agg"):
        LocalAlignmentLoss(agg="max")
    with pytest.raises(ValueError, match="alpha_scores"):
        local_alignment_loss(beats, sents, mask, alpha_scores="dotted")  # type: ignore[arg-type]


def test_local_loss_runs_in_float32_from_bf16() -> None:
    beats, sents, mask = ragged_batch(n=4, dtype=torch.float32)
    loss = local_alignment_loss(beats.bfloat16(), sents.bfloat16(), mask)
    assert loss.dtype == torch.float32
    assert torch.isfinite(loss)


class _LargestTensor(TorchDispatchMode):
    """Records the largest tensor any aten op produces (forward and backward)."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for leaf in tree_leaves(out):
            if isinstance(leaf, torch.Tensor):
                self.largest = max(self.largest, leaf.numel())
        return out


def test_local_loss_never_allocates_a_pairwise_tensor_of_width_d() -> None:
    n, q, s, d = 8, 4, 3, 96
    beats, sents, mask = ragged_batch(n=n, q=q, s=s, d=d, counts=[3] * n, dtype=torch.float32)
    pairwise_width_d = n * n * s * d
    for loss_fn, expect_small in ((local_alignment_loss, True), (materialised_contexts_loss, False)):
        b = beats.clone().requires_grad_(True)
        t = sents.clone().requires_grad_(True)
        with _LargestTensor() as mode:
            loss_fn(b, t, mask).backward()
        assert (mode.largest < pairwise_width_d // 4) is expect_small, (loss_fn.__name__, mode.largest)
    assert materialised_contexts_loss(beats, sents, mask).item() == pytest.approx(
        local_alignment_loss(beats, sents, mask).item(), abs=1e-5
    )


def test_local_loss_equals_the_reference_code_formulation() -> None:
    beats, sents, mask = ragged_batch(n=7, q=5, s=4, d=12, counts=[1, 4, 2, 3, 1, 4, 2], seed=5)
    sentences = [sents[i][mask[i]] for i in range(7)]
    expected = reference_local_loss(beats, sentences)
    assert local_alignment_loss(beats, sents, mask).item() == pytest.approx(expected.item(), abs=1e-10)


def test_attention_maps_match_the_matched_pair_attention() -> None:
    beats, sents, mask = ragged_batch(n=4, counts=[1, 3, 0, 2])
    maps = local_attention_maps(beats, sents, mask)
    assert maps.shape == (4, 4, beats.shape[1])
    for i in range(4):
        s_i = sents[i][mask[i]]
        if s_i.shape[0]:
            expected = (4.0 * (beats[i] @ s_i.T).softmax(dim=1).T).softmax(dim=1)
            torch.testing.assert_close(maps[i][mask[i]], expected)
        assert torch.all(maps[i][~mask[i]] == 0)
    torch.testing.assert_close(maps[mask].sum(-1), torch.ones(int(mask.sum()), dtype=maps.dtype))


def test_cosine_attention_maps_use_normalised_scores() -> None:
    beats, sents, mask = ragged_batch(n=4, counts=[1, 3, 0, 2])
    beats = 20.0 * beats
    maps = local_attention_maps(beats, sents, mask, alpha_scores="cosine")
    for i in range(4):
        s_i = sents[i][mask[i]]
        if s_i.shape[0]:
            cos = F.normalize(beats[i], dim=-1) @ F.normalize(s_i, dim=-1).T  # (Q, s_i)
            torch.testing.assert_close(maps[i][mask[i]], (4.0 * cos.softmax(dim=1).T).softmax(dim=1))
        assert torch.all(maps[i][~mask[i]] == 0)
    assert not torch.allclose(maps, local_attention_maps(beats, sents, mask))


def _outputs(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    beats, sents, mask = ragged_batch(n=4, dtype=torch.float32, seed=seed)
    return {
        "ecg_latent": F.normalize(torch.randn(4, 16, generator=g), dim=-1),
        "text_latent": F.normalize(torch.randn(4, 16, generator=g), dim=-1),
        "logit_scale": torch.tensor(math.log(1 / 0.07)),
        "beat_embs": beats,
        "sentence_embs": sents,
        "sentence_mask": mask,
        "caption_logits": torch.randn(4, 6, 11, generator=g),
        "caption_labels": torch.tensor([[5, 6, 2, 0, 0, 0]] * 4),
    }


def test_melp_loss_weights_and_exponentiates_logit_scale() -> None:
    out = _outputs()
    terms = MELPLoss(pad_id=0)(out)
    assert set(terms) == {"clip_loss", "caption_loss", "local_loss", "loss"}
    clip = ClipLoss()(out["ecg_latent"], out["text_latent"], torch.tensor(1 / 0.07))
    cap = CaptionLoss(pad_id=0)(out["caption_logits"], out["caption_labels"])
    loc = local_alignment_loss(out["beat_embs"], out["sentence_embs"], out["sentence_mask"])
    assert terms["clip_loss"].item() == pytest.approx(clip.item(), rel=1e-5)
    assert terms["caption_loss"].item() == pytest.approx(cap.item(), rel=1e-6)
    assert terms["local_loss"].item() == pytest.approx(loc.item(), rel=1e-6)
    assert terms["loss"].item() == pytest.approx(clip.item() + 2.0 * cap.item() + 0.2 * loc.item(), rel=1e-5)
    with pytest.raises(KeyError, match="sentence_mask"):
        MELPLoss(pad_id=0)({k: v for k, v in out.items() if k != "sentence_mask"})


def test_local_alpha_config_key_reaches_the_local_loss() -> None:
    assert load_pretrain_config(None, []).loss.local_alpha == "dot"
    cfg = load_pretrain_config(None, ["loss.local_alpha=cosine"])
    assert cfg.loss.local_alpha == "cosine"
    with pytest.raises(Exception, match="local_alpha"):
        load_pretrain_config(None, ["loss.local_alpha=sine"])
    out = _outputs()
    terms = MELPLoss(pad_id=0, local_alpha=cfg.loss.local_alpha)(out)
    expected = local_alignment_loss(out["beat_embs"], out["sentence_embs"], out["sentence_mask"], alpha_scores="cosine")
    assert terms["local_loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert MELPLoss(pad_id=0)(out)["local_loss"].item() != pytest.approx(expected.item(), rel=1e-6)


class _MatmulDtypes(TorchDispatchMode):
    """Records the output dtype of every matrix product (mm, bmm, addmm, ...) run inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.dtypes: set[torch.dtype] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func.__name__.split(".")[0] in {"mm", "bmm", "addmm", "baddbmm", "matmul"}:
            self.dtypes.add(out.dtype)
        return out


def test_losses_compute_logits_in_float32_under_bf16_autocast() -> None:
    g = torch.Generator().manual_seed(3)
    ecg = F.normalize(torch.randn(6, 16, generator=g), dim=-1)
    text = F.normalize(torch.randn(6, 16, generator=g), dim=-1)
    beats, sents, mask = ragged_batch(n=6, dtype=torch.float32)
    scale = torch.tensor(50.0)
    clip, fp32_clip = ClipLoss(), ClipLoss()(ecg, text, scale)
    fp32_local = local_alignment_loss(beats, sents, mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert (ecg @ text.T).dtype == torch.bfloat16  # what autocast does to a bare matmul
        with _MatmulDtypes() as seen:
            logits_e2t, logits_t2e, _, _ = clip.logits(ecg.bfloat16(), text.bfloat16(), scale)
            auto_clip = clip(ecg, text, scale)
            auto_local = local_alignment_loss(beats, sents, mask)
    assert logits_e2t.dtype == logits_t2e.dtype == torch.float32
    assert seen.dtypes == {torch.float32}
    assert auto_clip.dtype == auto_local.dtype == torch.float32
    assert torch.allclose(auto_clip, fp32_clip, rtol=1e-6) and torch.allclose(auto_local, fp32_local, rtol=1e-6)
