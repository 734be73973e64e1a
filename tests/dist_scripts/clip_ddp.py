"""Run under ``torchrun --nproc_per_node=2`` (gloo): distributed losses and gathers against one process.

Writes ``rank<r>.json`` into the folder given as the only argument; tests/test_distributed.py
launches it and checks the numbers. Every rank recomputes the single-process reference locally
(no collectives), so the comparison is exact and self-contained.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from melp.losses import ClipLoss, LocalAlignmentLoss
from melp.train.distributed import (
    all_reduce_mean,
    any_flag,
    cleanup,
    gather_predictions,
    gather_tensors_for_eval,
    init_distributed,
)

N, IN, D, Q, S = 8, 6, 5, 3, 4


class Towers(nn.Module):
    """Two linear towers, beat and sentence heads, and a log logit scale."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.ecg = nn.Linear(IN, D)
        self.text = nn.Linear(IN, D)
        self.beat = nn.Linear(IN, Q * D)
        self.sent = nn.Linear(IN, D)
        self.logit_scale = nn.Parameter(torch.tensor(1.5))

    def forward(self, x_ecg: torch.Tensor, x_sent: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            "ecg": F.normalize(self.ecg(x_ecg), dim=-1),
            "text": F.normalize(self.text(x_sent.mean(1)), dim=-1),
            "beats": self.beat(x_ecg).view(-1, Q, D),
            "sents": self.sent(x_sent),
        }


def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x_ecg = torch.randn(N, IN, generator=g)
    x_sent = torch.randn(N, S, IN, generator=g)
    mask = torch.arange(S)[None] < torch.tensor([1, 4, 2, 0, 3, 1, 2, 4])[:, None]
    return x_ecg, x_sent, mask


def losses(model: nn.Module, clip: nn.Module, local: nn.Module, x_ecg, x_sent, mask) -> torch.Tensor:
    out = model(x_ecg, x_sent)
    scale = (model.module if isinstance(model, DistributedDataParallel) else model).logit_scale.exp()
    return clip(out["ecg"], out["text"], scale), local(out["beats"], out["sents"], mask)


def grads(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def compare(env, sizes: list[int], *, with_local: bool) -> dict[str, float]:
    x_ecg, x_sent, mask = batch()
    ref = Towers()
    ref_clip, ref_local = losses(ref, ClipLoss(), LocalAlignmentLoss(), x_ecg, x_sent, mask)
    weight = 1.0 if with_local else 0.0  # 0: every parameter still gets a (zero) gradient, as DDP requires
    (ref_clip + weight * ref_local).backward()

    start = sum(sizes[: env.rank])
    rows = slice(start, start + sizes[env.rank])
    n_sent = max(int(mask[rows].sum(1).max()), 1)  # ranks hold different padded sentence counts
    ddp = DistributedDataParallel(Towers())
    clip = ClipLoss(rank=env.rank, world_size=env.world_size)
    local = LocalAlignmentLoss(rank=env.rank, world_size=env.world_size, gather=True)
    got_clip, got_local = losses(ddp, clip, local, x_ecg[rows], x_sent[rows, :n_sent], mask[rows, :n_sent])
    (got_clip + weight * got_local).backward()
    return {
        "clip_ref": ref_clip.item(),
        "clip_mean": all_reduce_mean(got_clip),
        "local_ref": ref_local.item(),
        "local_mean": all_reduce_mean(got_local),
        "grad_max_abs_diff": (grads(ddp.module) - grads(ref)).abs().max().item(),
        "grad_norm": grads(ref).norm().item(),
    }


def main() -> int:
    out_dir = Path(sys.argv[1])
    torch.set_num_threads(1)
    env = init_distributed(device="cpu")
    result: dict[str, object] = {"rank": env.rank, "world_size": env.world_size, "backend": env.backend}
    for name, sizes in (("equal", [4, 4]), ("uneven", [3, 5])):
        result[f"clip_{name}"] = compare(env, sizes, with_local=False)
        result[f"all_{name}"] = compare(env, sizes, with_local=True)

    local_rows = torch.arange(3) if env.rank == 0 else torch.arange(3, 8)  # uneven shards
    result["gathered_rows"] = gather_tensors_for_eval(local_rows * 10).tolist()
    sampler = DistributedSampler(range(7), num_replicas=env.world_size, rank=env.rank, shuffle=False)
    index = torch.tensor(list(sampler))  # 4 per rank: one sample duplicated as padding
    preds = index.float()[:, None] * torch.ones(1, 2)
    keep_index, keep_preds = gather_predictions(index, preds)
    result["sampler_local"] = index.tolist()
    result["dedup_index"] = keep_index.tolist()
    result["dedup_preds_match"] = bool(torch.equal(keep_preds[:, 0], keep_index.float()))
    result["any_flag"] = any_flag(env.rank == 1)
    result["no_flag"] = any_flag(False)
    result["rank_mean"] = all_reduce_mean(float(env.rank))
    (out_dir / f"rank{env.rank}.json").write_text(json.dumps(result))
    cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
