"""Local (beat↔sentence) loss: the reference's loop over texts vs melp's vectorised form (spec §3.2, §9 item 15).

Three formulations of the same loss, forward + backward on CPU:

* ``reference``: the reference code's structure (a Python loop over texts; each step repeats the
  text's sentences B times and batches over the ECGs, building contexts of width D);
* ``materialised``: a naive vectorisation that forms every context at once, ``(B, B, Q, S)``
  attention and ``(B, B, S, D)`` contexts;
* ``melp``: :func:`melp.losses.local_alignment_loss` (scores, Gram matrices, no width-D pair tensor).

Peak memory is the high-water mark of live tensor bytes allocated during the step, from the torch
profiler's memory events (inputs excluded).

Run: ``.venv/bin/python -m benchmarks.bench_local_loss [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from benchmarks.common import machine_info, write_result
from melp.losses import local_alignment_loss


def reference_local_loss(
    beats: torch.Tensor, sentences: list[torch.Tensor], temp1: float = 4.0, temp2: float = 5.0, temp3: float = 10.0
) -> torch.Tensor:
    """The reference's formulation: loop over texts, each step batched over the B ECGs with repeats."""
    n = beats.shape[0]
    context = beats.transpose(1, 2)  # (B, D, Q)
    columns = []
    for sent in sentences:  # (s_i, D)
        s_i = sent.shape[0]
        query = sent.T.unsqueeze(0).repeat(n, 1, 1)  # (B, D, s_i)
        attn = torch.bmm(context.transpose(1, 2), query).softmax(dim=-1)  # (B, Q, s_i), over sentences
        attn = (temp1 * attn.transpose(1, 2)).softmax(dim=-1)  # (B, s_i, Q), over beats
        weighted = torch.bmm(context, attn.transpose(1, 2))  # (B, D, s_i)
        q = query.transpose(1, 2).reshape(n * s_i, -1)  # (B·s_i, D)
        w = weighted.transpose(1, 2).reshape(n * s_i, -1)  # (B·s_i, D)
        cos = (q * w).sum(1) / (q.norm(dim=1) * w.norm(dim=1)).clamp(min=1e-8)
        columns.append(torch.exp(temp2 * cos.view(n, s_i)).sum(dim=1, keepdim=True).log())  # (B, 1)
    sims = temp3 * torch.cat(columns, dim=1)  # (B ECGs, B texts)
    labels = torch.arange(n)
    return (F.cross_entropy(sims, labels) + F.cross_entropy(sims.T, labels)) / 2


def materialised_contexts_loss(
    beats: torch.Tensor,
    sents: torch.Tensor,
    mask: torch.Tensor,
    temp1: float = 4.0,
    temp2: float = 5.0,
    temp3: float = 10.0,
) -> torch.Tensor:
    """Naive vectorisation: all contexts of width D at once (every text needs a sentence)."""
    scores = torch.einsum("bld,ikd->bilk", beats, sents).masked_fill(
        ~mask[None, :, None], float("-inf")
    )  # (B, B, Q, S)
    alpha = (temp1 * scores.softmax(-1)).softmax(2)  # over beats
    contexts = torch.einsum("bilk,bld->bikd", alpha, beats)  # (B, B, S, D)
    cos = F.cosine_similarity(contexts, sents[None], dim=-1)  # (B, B, S)
    r = torch.logsumexp((temp2 * cos).masked_fill(~mask[None], float("-inf")), -1)  # (B, B)
    labels = torch.arange(beats.shape[0])
    return (F.cross_entropy(temp3 * r, labels) + F.cross_entropy(temp3 * r.T, labels)) / 2


def make_inputs(n: int, q: int, d: int, s_min: int, s_max: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    beats = torch.randn(n, q, d, generator=g)
    counts = torch.randint(s_min, s_max + 1, (n,), generator=g)
    sents = torch.randn(n, s_max, d, generator=g)
    mask = torch.arange(s_max)[None] < counts[:, None]
    return beats, sents * mask[..., None], mask


def step(fn: Callable[..., torch.Tensor], beats: torch.Tensor, sents: torch.Tensor, mask: torch.Tensor) -> float:
    b = beats.clone().requires_grad_(True)
    s = sents.clone().requires_grad_(True)
    if fn is reference_local_loss:
        loss = fn(b, [s[i][mask[i]] for i in range(b.shape[0])])
    else:
        loss = fn(b, s, mask)
    loss.backward()
    return loss.item()


def time_steps(methods: dict[str, Callable[..., torch.Tensor]], inputs, repeats: int) -> dict[str, list[float]]:
    """Seconds per forward + backward; methods alternate within each round so that load from
    other processes on a shared machine affects them alike."""
    times: dict[str, list[float]] = {name: [] for name in methods}
    for fn in methods.values():
        step(fn, *inputs)  # warm-up
    for _ in range(repeats):
        for name, fn in methods.items():
            start = time.perf_counter()
            step(fn, *inputs)
            times[name].append(time.perf_counter() - start)
    return times


def peak_bytes(fn, inputs) -> int:
    """High-water mark of bytes allocated by one forward + backward (profiler memory events)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        step(fn, *inputs)
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]")
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--queries", type=int, default=12)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument(
        "--sentences", type=int, nargs=2, default=(4, 12), metavar=("MIN", "MAX"), help="ragged range, mean ≈ 8"
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    repeats = 3 if args.quick else 15
    inputs = make_inputs(args.batch, args.queries, args.dim, *args.sentences)
    methods = {
        "reference": reference_local_loss,
        "materialised": materialised_contexts_loss,
        "melp": local_alignment_loss,
    }
    losses = {name: step(fn, *inputs) for name, fn in methods.items()}
    times = time_steps(methods, inputs, repeats)
    results = {}
    for name, fn in methods.items():
        results[name] = {
            "median_s": statistics.median(times[name]),
            "min_s": min(times[name]),
            "peak_mib": peak_bytes(fn, inputs) / 2**20,
            "loss": losses[name],
        }
        print(
            f"{name:>12}: {1e3 * results[name]['median_s']:8.1f} ms (min {1e3 * results[name]['min_s']:.1f})  "
            f"peak {results[name]['peak_mib']:7.1f} MiB  loss {losses[name]:.6f}"
        )
    speedup = results["reference"]["median_s"] / results["melp"]["median_s"]
    speedup_min = results["reference"]["min_s"] / results["melp"]["min_s"]
    print(
        f"speed-up of melp over the reference loop: {speedup:.1f}x median, {speedup_min:.1f}x best (target >= 3x); "
        f"memory {results['reference']['peak_mib'] / results['melp']['peak_mib']:.1f}x less"
    )
    write_result(
        "bench_local_loss",
        {
            "machine": machine_info(torch=torch.__version__, threads=args.threads),
            "shape": {
                "B": args.batch,
                "Q": args.queries,
                "D": args.dim,
                "S_range": list(args.sentences),
                "mean_S": float(inputs[2].sum(1).float().mean()),
            },
            "repeats": repeats,
            "results": results,
            "speedup_vs_reference": speedup,
            "speedup_vs_reference_best": speedup_min,
            "max_loss_diff_vs_reference": abs(losses["melp"] - losses["reference"]),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
