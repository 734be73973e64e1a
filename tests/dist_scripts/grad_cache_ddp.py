"""Run under ``torchrun --nproc_per_node=2`` (gloo): exact (GradCache) accumulation under DDP against one process.

Arguments: a text-model directory (a micro BERT, no dropout) and an output folder. Each rank takes
4 of 8 pairs as a window of two micro-batches, runs two exact steps through DDP (the second one
checks DDP's reducer state after the first), and writes ``rank<r>.json`` with the largest relative
gradient difference from a reference every rank computes locally without collectives: one plain
forward of all 8 pairs with the objective DDP optimises (CLIP and local loss over the 8, the caption
mean of each rank's tokens, averaged).
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from melp.data.collate import ECGReportCollator
from melp.losses import MELPLoss
from melp.models import MELP, MELPConfig
from melp.train import distributed as D
from melp.train.grad_cache import exact_accumulation_step

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


def main() -> None:
    text_dir, out = sys.argv[1], Path(sys.argv[2])
    torch.set_num_threads(1)
    env = D.init_distributed(device="cpu")
    config = MELPConfig.preset("micro")
    config.ecg.dropout = config.ecg.attention_dropout = 0.0
    config.text.n_frozen_layers = 1
    config.text.max_length = 48
    torch.manual_seed(0)
    model = MELP.from_text_model(config=config, text_model_dir=text_dir).train()
    collator = ECGReportCollator(model.tokenizer, max_length=48)
    ecg = torch.rand(8, 12, 256, generator=torch.Generator().manual_seed(1))

    def batch(rows: range) -> dict[str, torch.Tensor]:
        ids, mask = collator.tokenize([REPORTS[i] for i in rows])
        return {"ecg": ecg[rows.start : rows.stop], "input_ids": ids, "attention_mask": mask}

    # reference: the whole global batch in one plain forward, no collectives
    ref_loss = MELPLoss(pad_id=config.text.pad_token_id)
    outs = model(**batch(range(8)))
    clip = ref_loss.clip(outs["ecg_latent"], outs["text_latent"], outs["logit_scale"].exp())
    local = ref_loss.local(outs["beat_embs"], outs["sentence_embs"], outs["sentence_mask"])
    halves = [
        ref_loss.caption(outs["caption_logits"][s], outs["caption_labels"][s]) for s in (slice(0, 4), slice(4, 8))
    ]
    (clip + 0.2 * local + 2.0 * (halves[0] + halves[1]) / 2).backward()
    reference = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)

    ddp = DistributedDataParallel(model)
    loss_fn = MELPLoss(pad_id=config.text.pad_token_id, rank=env.rank, world_size=2, local_loss_gather=True)
    start = 4 * env.rank
    window = [batch(range(start, start + 1)), batch(range(start + 1, start + 4))]
    errors = []
    for _ in range(2):
        losses = exact_accumulation_step(
            forward=ddp, loss_fn=loss_fn, inputs=window, any_nonfinite=D.any_flag, autocast=contextlib.nullcontext,
            sync=lambda last: contextlib.nullcontext() if last else ddp.no_sync(),
        )  # fmt: skip
        assert losses is not None
        floor = 1e-3 * torch.stack([g.norm() for g in reference.values()]).norm()
        errors.append(
            max(
                float((p.grad - reference[n]).norm() / torch.maximum(reference[n].norm(), floor))
                for n, p in model.named_parameters()
                if p.grad is not None
            )
        )
        model.zero_grad(set_to_none=True)
    record = {"errors": errors, "clip_loss": float(losses["clip_loss"]), "ref_clip_loss": float(clip)}
    (out / f"rank{env.rank}.json").write_text(json.dumps(record))
    D.cleanup()


if __name__ == "__main__":
    main()
