"""Where one stage-2 training step spends its time, by part of the model (issue 14 item 1).

Times the model's public calls of one MELP training step with a preset (default ``tiny``, the
demo's): ECG tower + poolers, text encoder, caption decoder, the three losses, backward, AdamW.
The text side is a stage-1 BERT of the preset's size trained for a few steps on the fly (its
weights do not change the cost), the batch comes from a synthetic store through the training
transform. Median of ``--repeats`` steps after one warm-up step.

    python -m benchmarks.bench_step_profile                # tiny, 100 Hz, batch 16, the preset's precision
    python -m benchmarks.bench_step_profile --precision fp32 --threads 2
    python -m benchmarks.bench_step_profile --quick        # micro
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import machine_info, write_result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="micro preset, 2 repeats")
    parser.add_argument(
        "--precision", choices=("fp32", "bf16"), default=None, help="default: the preset's training.precision"
    )
    args = parser.parse_args()
    if args.quick:
        args.preset, args.repeats = "micro", 2
    torch.set_num_threads(args.threads)

    from melp.configs import resolve_config
    from melp.data import build_store, open_store
    from melp.data.synthetic import SOURCE, SynthItem, process_item
    from melp.data.transforms import build_transform
    from melp.losses import MELPLoss
    from melp.models import MELP
    from melp.train.config import TextPretrainConfig, load_pretrain_config
    from melp.train.optim import build_optimizer
    from melp.train.precision import autocast, bf16_autocast_available
    from melp.train.text_pretrain import train_text_encoder

    cfg = load_pretrain_config(resolve_config(args.preset))
    precision = args.precision or cfg.training.precision
    # bf16 only where it pays (CUDA, AMX CPUs)
    effective = "bf16" if precision == "bf16" and bf16_autocast_available(torch.device("cpu")) else "fp32"
    batch = cfg.data.batch_size
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        fs = cfg.model.fs
        items = [SynthItem(seed=0, index=i, fs=fs) for i in range(max(64, batch))]
        build_store(root / "store", items, process_item, fs=fs, seconds=10.0, source=SOURCE, progress=False)
        text_size = "micro" if args.preset == "micro" else "tiny"
        text_cfg = TextPretrainConfig(size=text_size, max_steps=2, batch_size=16, log_every=1)  # type: ignore[arg-type]
        text_dir = train_text_encoder(text_cfg, stores=[root / "store"], out=root / "text", device="cpu")
        model = MELP.from_text_model(config=cfg.model, text_model_dir=text_dir).train()
        store = open_store(root / "store")
        transform = build_transform(normalization=cfg.model.normalization, lead_mask_keep=cfg.data.lead_mask_keep)
        ecg = torch.from_numpy(transform(store.signals[:batch].astype("float32")))
        tok = model.tokenizer
        assert tok is not None
        enc = tok(list(store.meta["report"][:batch]), padding=True, truncation=True,
                  max_length=cfg.model.text.max_length, return_tensors="pt")  # fmt: skip
    lc = cfg.loss
    loss_fn = MELPLoss(clip_weight=lc.clip_weight, caption_weight=lc.caption_weight, local_weight=lc.local_weight,
                       pad_id=int(tok.pad_token_id))  # fmt: skip
    oc = cfg.optim  # the training loop's optimizer (fused AdamW on the CPU)
    optimizer = build_optimizer(model, lr=oc.lr, weight_decay=oc.weight_decay, betas=oc.betas, eps=oc.eps,
                                decay_norms_and_biases=oc.decay_norms_and_biases)  # fmt: skip
    parts = ("ecg_tower_and_poolers", "text_encoder", "caption_decoder", "losses", "backward", "optimizer")
    times: dict[str, list[float]] = {k: [] for k in parts}
    for step in range(args.repeats + 1):
        marks = [time.perf_counter()]
        with autocast(precision, torch.device("cpu")):
            e = model.encode_ecg(ecg, with_attention=False)
            marks.append(time.perf_counter())
            t = model.encode_text(enc["input_ids"], enc["attention_mask"])
            marks.append(time.perf_counter())
            logits = model.decoder(t["token_embs"][:, :-1], e["ecg_tokens"])
            marks.append(time.perf_counter())
            losses = loss_fn({"ecg_latent": e["ecg_latent"], "text_latent": t["text_latent"],
                              "beat_embs": e["beat_embs"], "sentence_embs": t["sentence_embs"],
                              "sentence_mask": t["sentence_mask"], "caption_logits": logits,
                              "caption_labels": enc["input_ids"][:, 1:].long(),
                              "logit_scale": model.logit_scale})  # fmt: skip
            marks.append(time.perf_counter())
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        marks.append(time.perf_counter())
        optimizer.step()
        marks.append(time.perf_counter())
        if step:  # the first step warms up
            for k, a, b in zip(parts, marks, marks[1:]):
                times[k].append(b - a)
    median = {k: statistics.median(v) * 1000 for k, v in times.items()}
    total = sum(median.values())
    for k, ms in median.items():
        print(f"{k:24s} {ms:8.1f} ms  {ms / total:6.1%}")
    print(f"{'total':24s} {total:8.1f} ms  ({batch / total * 1000:.1f} pairs/s, {effective})")
    params = {name: sum(p.numel() for p in getattr(model, name).parameters())
              for name in ("ecg_encoder", "beat_pooler", "caption_pooler", "text", "decoder")}  # fmt: skip
    write_result(
        "bench_step_profile",
        {
            "machine": machine_info(torch_threads=torch.get_num_threads()),
            "protocol": {
                "preset": args.preset,
                "batch_size": batch,
                "fs": cfg.model.fs,
                "repeats": args.repeats,
                "precision": effective,
            },
            "ms_per_step": median,
            "total_ms": total,
            "pairs_per_s": batch / total * 1000,
            "parameters": params,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
