"""GPU levers tested on CPU: activation checkpointing and exact (GradCache) accumulation give the plain gradients."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
import torch

from melp.data.collate import ECGReportCollator
from melp.losses import MELPLoss
from melp.models import MELP, MELPConfig, train_wordpiece_tokenizer
from melp.models.tokenizer import build_bert_config, build_text_model_dir
from melp.train.activation_checkpointing import enable_activation_checkpointing
from melp.train.grad_cache import REPRESENTATIONS, exact_accumulation_step

REPORTS = [
    "sinus rhythm. normal ecg.",
    "atrial fibrillation with rapid ventricular response. left axis deviation. abnormal ecg.",
    "sinus bradycardia. first degree av block.",
    "sinus tachycardia. st elevation in anterior leads. acute mi suspected. abnormal ecg.",
    "sinus rhythm. right bundle branch block.",
    "atrial flutter.",
    "sinus rhythm. low qrs voltages. borderline ecg.",
    "sinus rhythm with premature ventricular complexes. nonspecific t wave changes.",
]


def _model(tmp: Path, *, dropout: float) -> MELP:
    tok = train_wordpiece_tokenizer(REPORTS, vocab_size=300)
    bert = build_bert_config(vocab_size=len(tok), hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64)
    bert.hidden_dropout_prob = bert.attention_probs_dropout_prob = dropout
    build_text_model_dir(tmp / "text", tokenizer=tok, config=bert)
    config = MELPConfig.preset("micro")
    config.ecg.dropout = config.ecg.attention_dropout = dropout
    config.text.n_frozen_layers = 1
    config.text.max_length = 48
    torch.manual_seed(0)
    return MELP.from_text_model(config=config, text_model_dir=tmp / "text").train()


def _batch(model: MELP, rows: range) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    ecg = torch.rand(len(REPORTS), 12, 256, generator=g)
    assert model.tokenizer is not None
    ids, mask = ECGReportCollator(model.tokenizer, max_length=48).tokenize([REPORTS[i] for i in rows])
    return {"ecg": ecg[rows.start : rows.stop], "input_ids": ids, "attention_mask": mask}


def _loss_fn(model: MELP) -> MELPLoss:
    return MELPLoss(pad_id=model.config.text.pad_token_id)


def _grads(model: MELP) -> dict[str, torch.Tensor]:
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return grads


def _assert_grads_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], *, rtol: float) -> None:
    """Per tensor, relative to its norm, floored at 1e-3 of the whole gradient's norm (some gradients are
    zero in exact arithmetic, e.g. the attention key biases, and are rounding noise here)."""
    assert a.keys() == b.keys() and len(a) > 20
    floor = 1e-3 * torch.stack([g.norm() for g in b.values()]).norm()
    for name in a:
        err = (a[name] - b[name]).norm() / torch.maximum(b[name].norm(), floor)
        assert err <= rtol, (name, float(err))


def _global_rel_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """‖a - b‖ / ‖b‖ over all the gradients together."""
    diff = torch.stack([(a[n] - b[n]).norm() for n in b]).norm()
    return float(diff / torch.stack([g.norm() for g in b.values()]).norm())


def _exact_step(model: MELP, micro: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor] | None:
    return exact_accumulation_step(
        forward=model, loss_fn=_loss_fn(model), inputs=micro, sync=lambda last: contextlib.nullcontext(),
        autocast=contextlib.nullcontext, any_nonfinite=bool,
    )  # fmt: skip


@pytest.fixture(scope="module")
def dropout_model(tmp_path_factory: pytest.TempPathFactory) -> MELP:
    return _model(tmp_path_factory.mktemp("drop"), dropout=0.1)


def test_activation_checkpointing_keeps_the_gradients(dropout_model: MELP, tmp_path: Path) -> None:
    model = _model(tmp_path, dropout=0.1)
    model.load_state_dict(dropout_model.state_dict())
    batch = _batch(model, range(0, 6))
    torch.manual_seed(5)
    _loss_fn(model)(model(**batch))["loss"].backward()
    plain = _grads(model)
    enable_activation_checkpointing(model)
    torch.manual_seed(5)
    _loss_fn(model)(model(**batch))["loss"].backward()
    _assert_grads_close(_grads(model), plain, rtol=1e-6)  # same dropout masks: recomputation is exact


def test_activation_checkpointing_stores_fewer_activations(tmp_path: Path) -> None:
    model = _model(tmp_path, dropout=0.0)
    batch = _batch(model, range(0, 8))

    def saved_bytes() -> int:
        total = 0

        def pack(t: torch.Tensor) -> torch.Tensor:
            nonlocal total
            total += t.numel() * t.element_size()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            _loss_fn(model)(model(**batch))["loss"].backward()
        model.zero_grad()
        return total

    plain = saved_bytes()
    enable_activation_checkpointing(model)
    assert saved_bytes() < 0.8 * plain


def test_exact_accumulation_equals_one_big_batch(tmp_path: Path) -> None:
    model = _model(tmp_path, dropout=0.0)
    loss = _loss_fn(model)(model(**_batch(model, range(0, 8))))
    loss["loss"].backward()
    big = _grads(model)
    # micro-batches tokenised on their own (their own padded length and sentence count)
    got = _exact_step(model, [_batch(model, range(0, 3)), _batch(model, range(3, 8))])
    assert got is not None
    for key in ("loss", "clip_loss", "caption_loss", "local_loss"):
        torch.testing.assert_close(got[key], loss[key].detach(), rtol=1e-5, atol=1e-6)
    _assert_grads_close(_grads(model), big, rtol=1e-4)
    # plain accumulation is not the big batch: the contrastive losses lose the other micro-batch's negatives
    for rows in (range(0, 3), range(3, 8)):
        (_loss_fn(model)(model(**_batch(model, rows)))["loss"] / 2).backward()
    per_micro = _grads(model)
    assert _global_rel_diff(per_micro, big) > 1e-2


def test_exact_accumulation_replays_each_micro_batchs_dropout(dropout_model: MELP) -> None:
    model = dropout_model
    micro = [_batch(model, range(0, 4)), _batch(model, range(4, 8))]
    # reference: the same micro-batch forwards, with gradients, one loss over their concatenated outputs
    torch.manual_seed(7)
    outs = [model(**b) for b in micro]
    loss_fn = _loss_fn(model)
    s_max = max(o["sentence_embs"].shape[1] for o in outs)

    def cat(key: str) -> torch.Tensor:
        parts = [o[key] for o in outs]
        if key in ("sentence_embs", "sentence_mask"):
            parts = [torch.nn.functional.pad(p, [0, 0] * (p.dim() - 2) + [0, s_max - p.shape[1]]) for p in parts]
        return torch.cat(parts)

    sums = [loss_fn.caption.token_sum(o["caption_logits"], o["caption_labels"]) for o in outs]
    caption = sum(s for s, _ in sums) / sum(n for _, n in sums)
    r = {k: cat(k) for k in (*REPRESENTATIONS, "sentence_mask")}
    clip = loss_fn.clip(r["ecg_latent"], r["text_latent"], model.logit_scale.exp())
    local = loss_fn.local(r["beat_embs"], r["sentence_embs"], r["sentence_mask"])
    (clip + 2.0 * caption + 0.2 * local).backward()
    reference = _grads(model)
    torch.manual_seed(7)
    assert _exact_step(model, micro) is not None
    _assert_grads_close(_grads(model), reference, rtol=1e-4)
    torch.manual_seed(8)  # another seed draws other masks: the replay, not luck, made them agree
    _exact_step(model, micro)
    assert _global_rel_diff(_grads(model), reference) > 1e-3


def test_exact_accumulation_skips_a_non_finite_window(tmp_path: Path) -> None:
    model = _model(tmp_path, dropout=0.0)
    bad = _batch(model, range(0, 4))
    bad["ecg"] = bad["ecg"] * float("inf")
    with pytest.raises(ValueError, match="NaN or infinite"):
        _exact_step(model, [bad, _batch(model, range(4, 8))])
    loss_fn = _loss_fn(model)
    loss_fn.clip_weight = float("nan")
    got = exact_accumulation_step(
        forward=model, loss_fn=loss_fn, inputs=[_batch(model, range(0, 4)), _batch(model, range(4, 8))],
        sync=lambda last: contextlib.nullcontext(), autocast=contextlib.nullcontext, any_nonfinite=bool,
    )  # fmt: skip
    assert got is None and all(p.grad is None for p in model.parameters())


def test_pretrainer_runs_exact_accumulation_with_checkpointing(tmp_path: Path) -> None:
    from melp.cli.pretrain import build_pretrainer
    from melp.configs import preset_path
    from melp.data import build_store
    from melp.data.synthetic import SOURCE, SynthItem, process_item
    from melp.train.config import load_pretrain_config
    from melp.train.distributed import init_distributed

    items = [SynthItem(seed=0, index=i, fs=100) for i in range(16)]
    build_store(tmp_path / "store", items, process_item, fs=100, seconds=10.0, source=SOURCE, progress=False)
    _model(tmp_path, dropout=0.1)  # writes tmp_path/text
    overrides = ["data.batch_size=4", "training.grad_accum=2", "training.grad_accum_mode=exact",
                 "training.checkpoint_activations=true", "training.max_steps=2", "model.text.max_length=48"]  # fmt: skip
    cfg = load_pretrain_config(preset_path("micro"), overrides)
    run = tmp_path / "run"
    trainer = build_pretrainer(
        cfg, train=[str(tmp_path / "store")], val=[], text_model=str(tmp_path / "text"), run_dir=run,
        env=init_distributed(device="cpu"),
    )  # fmt: skip
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.fit()
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if r["split"] == "train"] == [1, 2]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in lines)
    assert any(not torch.equal(p, before[n]) for n, p in trainer.model.named_parameters())
    saved = (run / "checkpoints" / "step_00000002" / "run_config.yaml").read_text()
    assert "grad_accum_mode: exact" in saved and "checkpoint_activations: true" in saved


@pytest.mark.distributed
def test_exact_accumulation_under_ddp_equals_one_process(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    _model(tmp_path, dropout=0.0)  # writes tmp_path/text
    script = Path(__file__).parent / "dist_scripts" / "grad_cache_ddp.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
           str(tmp_path / "text"), str(tmp_path)]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-4000:]
    records = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(2)]
    for record in records:
        assert max(record["errors"]) < 1e-4, record  # both steps: DDP's reducer was left in order
    # each rank's CLIP loss covers its own rows against all 8; their mean is the one-process loss
    mean_clip = (records[0]["clip_loss"] + records[1]["clip_loss"]) / 2
    assert mean_clip == pytest.approx(records[0]["ref_clip_loss"], rel=1e-5)


def test_bf16_autocast_keeps_fp32_weights_gradients_and_losses(tmp_path: Path) -> None:
    model = _model(tmp_path, dropout=0.0)
    batch = _batch(model, range(0, 6))
    fp32 = _loss_fn(model)(model(**batch))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(**batch)
        losses = _loss_fn(model)(out)
    assert out["caption_logits"].dtype == torch.bfloat16  # the model did run in bf16
    assert all(v.dtype == torch.float32 for v in losses.values())
    losses["loss"].backward()
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(p.grad.dtype == torch.float32 for p in model.parameters() if p.grad is not None)
    for key in ("clip_loss", "caption_loss", "local_loss"):  # bf16 activations, same losses to bf16 precision
        torch.testing.assert_close(losses[key], fp32[key].detach(), rtol=0.05, atol=0.05)
