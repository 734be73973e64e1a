"""One-shot GPU check of the paper preset (issue 12): throughput, MFU, memory, compile, embedding, parity, max batch.

For each case (``paper``: the ``melp_paper`` preset, ``small`` ECG tower + BERT-base-shaped text
side + 6-layer decoder, 500 Hz × 10 s, batch 64, bf16 autocast; ``tiny``: the ``tiny`` preset at
its 100 Hz, batch 64) it measures, through the real training step
(:meth:`melp.train.loop.Pretrainer.train_step`: forward, the three losses, backward, clipping,
fused AdamW):

* training pairs/s and **model FLOPs utilisation**: FLOPs per step counted analytically from the
  config (:func:`melp.models.flops.melp_training_flops`, forward + exact backward, matmuls only)
  × steps/s ÷ the card's dense bf16 peak, looked up by device name (:data:`PEAK_BF16_TFLOPS`;
  ``--peak-tflops`` overrides it);
* peak GPU memory; all of it eager and under ``torch.compile`` (compile time reported apart),
  and, for the first case, eager with ``training.checkpoint_activations`` and with exact
  accumulation of 4 micro-batches (``training.grad_accum_mode=exact``), to show what each costs;
* inference embedding throughput (``encode_ecg``, ECGs/s, batch 256, bf16);
* the largest batch per GPU that trains (doubling from 64, then bisection to a multiple of 32, at
  most ``--max-batch`` pairs), without and with ``training.checkpoint_activations``.

Once, on a micro model: fp32 parity of one forward/backward on the device against the CPU (TF32
off; the loss within 1e-5 relative, every gradient tensor within 1e-3 of its norm, the whole
gradient within 1e-4).

Nothing is downloaded: the BERT is built from a ``BertConfig`` with a WordPiece tokenizer trained
on the fly on a synthetic store's reports. Inputs go through the real transforms and collator
(resampling, lead masking, min-max); the batches are prepared once and cycled, so the input
pipeline (``benchmarks/bench_input_pipeline.py``) is not part of these numbers. Results are
written after every phase, so an interrupted run keeps what it measured; phases that would not
fit in ``--budget-s`` are skipped and say so.

Run (one H100/H200, ≤ 8 min)::

    python -m benchmarks.gpu_check
    python -m benchmarks.gpu_check --device cpu --quick    # micro case on CPU (CI; tests/test_gpu_check.py)
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import RESULTS_DIR, machine_info

#: dense (non-sparse) bf16 tensor-core peak in TFLOPS, by a substring of ``torch.cuda.get_device_name``;
#: the first match wins, so the more specific names come first
PEAK_BF16_TFLOPS: list[tuple[str, float]] = [
    ("GH200", 989.0),
    ("H200 NVL", 835.0),
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),  # SXM (HBM3)
    ("H800", 989.0),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("A800", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
    ("A10", 125.0),
]


#: how allocation failures inside cuBLAS / cuDNN / NCCL read when they are not a torch.OutOfMemoryError
OOM_MESSAGES = (
    "out of memory",
    "CUBLAS_STATUS_ALLOC_FAILED",
    "CUDNN_STATUS_ALLOC_FAILED",
    "CUDNN_STATUS_NOT_SUPPORTED",
)


@dataclass(frozen=True)
class Case:
    """A preset measured by the check."""

    preset: str
    bert_size: str
    batch_size: int
    overrides: tuple[str, ...] = ()


CASES = {
    "paper": Case(preset="melp_paper", bert_size="base", batch_size=64),
    "tiny": Case(preset="tiny", bert_size="tiny", batch_size=64),
}
QUICK_CASES = {"micro": Case(preset="micro", bert_size="micro", batch_size=4)}


def peak_bf16_tflops(device_name: str) -> float | None:
    """The dense bf16 peak of the card named ``device_name``, or None when unknown."""
    for key, tflops in PEAK_BF16_TFLOPS:
        if key.lower() in device_name.lower():
            return tflops
    return None


class Check:
    """State shared by the phases: device, budget, scratch directory, store and results."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.device = torch.device(args.device)
        self.start = time.perf_counter()
        self.root = Path(tempfile.mkdtemp(prefix="gpu_check_"))
        self.results: dict[str, Any] = {}
        name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu"
        self.peak = args.peak_tflops if args.peak_tflops else peak_bf16_tflops(name)
        self.device_info = _device_info(self.device, name, self.peak)
        self.store = self._make_store()

    def left_s(self) -> float:
        return self.args.budget_s - (time.perf_counter() - self.start)

    def _make_store(self) -> Path:
        from melp.data import build_store
        from melp.data.synthetic import SOURCE, SynthItem, process_item

        n = 16 if self.args.quick else 256  # ≥ 4 × batch 64: the exact-accumulation phase's window
        items = [SynthItem(seed=0, index=i, fs=500) for i in range(n)]
        path = self.root / "store"
        build_store(path, items, process_item, fs=500, seconds=10.0, source=SOURCE, progress=False)
        return path

    def phase(self, name: str, seconds_needed: float, fn: Callable[[], Any]) -> None:
        """Run ``fn`` if ``seconds_needed`` fit in the budget; record its result or its error, then write."""
        if self.left_s() < seconds_needed:
            self.results[name] = {"skipped": f"{self.left_s():.0f} s of the budget left, {seconds_needed:.0f} s needed"}
        else:
            began = time.perf_counter()
            try:
                self.results[name] = fn()
            except Exception as err:  # a failed phase is a result too; the others still run
                self.results[name] = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}
            self.results[name]["phase_s"] = round(time.perf_counter() - began, 1)
        print(f"[{time.perf_counter() - self.start:6.1f} s] {name}: {_summary(self.results[name])}", flush=True)
        _release(self.device)
        self.write()

    def write(self) -> None:
        record = {
            "benchmark": "gpu_check",
            "command": " ".join([Path(sys.executable).name, "-m", "benchmarks.gpu_check", *sys.argv[1:]]),
            "machine": machine_info(load_average_1min=os.getloadavg()[0]),
            "device": self.device_info,
            "protocol": {
                "quick": self.args.quick,
                "warmup_steps": self.args.warmup,
                "measured_steps": self.args.steps,
                "flops": "melp.models.flops.melp_training_flops: matmul FLOPs of forward + exact backward, "
                "from the config and each batch's text length and sentence count",
                "mfu": "achieved model FLOP/s / device dense bf16 peak",
                "batches": "synthetic 500 Hz store through the real transforms and collator, prepared once and cycled",
            },
            "results": self.results,
        }
        out = Path(self.args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, indent=2) + "\n")


def _device_info(device: torch.device, name: str, peak: float | None) -> dict[str, Any]:
    info: dict[str, Any] = {"type": device.type, "name": name, "peak_bf16_tflops": peak, "torch": torch.__version__}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info |= {
            "capability": f"{props.major}.{props.minor}",
            "memory_gib": round(props.total_memory / 2**30, 1),
            "cuda": torch.version.cuda,
            "multiprocessors": props.multi_processor_count,
        }
    else:
        info["cpu"] = platform.processor()
    return info


def _summary(result: dict[str, Any]) -> str:
    keys = ("pairs_per_s", "mfu", "peak_memory_gib", "compile_s", "ecgs_per_s", "largest_batch", "passed")
    shown = {k: result[k] for k in keys if k in result}
    return json.dumps(shown or {k: v for k, v in result.items() if k != "traceback"})


def _release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # the process's peak RSS


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def build_trainer(check: Check, case: Case, *, overrides: tuple[str, ...] = ()) -> Any:
    """A :class:`~melp.train.loop.Pretrainer` of the case on the check's device, and its text model on disk."""
    from melp.cli.pretrain import build_pretrainer
    from melp.configs import preset_path
    from melp.data import open_store
    from melp.models.tokenizer import build_text_model_dir, train_wordpiece_tokenizer
    from melp.train.config import load_pretrain_config
    from melp.train.distributed import init_distributed
    from melp.train.text_pretrain import BERT_SIZES, bert_config

    text = check.root / f"text_{case.bert_size}"
    if not (text / "config.json").is_file():
        tokenizer = train_wordpiece_tokenizer(list(open_store(check.store).meta["report"]), vocab_size=2000)
        vocab = max(len(tokenizer), BERT_SIZES[case.bert_size][4])  # BERT-base keeps its 30,522-piece head
        config = bert_config(case.bert_size, vocab_size=vocab, pad_token_id=int(tokenizer.pad_token_id))
        build_text_model_dir(text, tokenizer=tokenizer, config=config)
    precision = "bf16" if check.device.type == "cuda" else "fp32"
    cfg = load_pretrain_config(
        preset_path(case.preset),
        [*case.overrides, *overrides, f"data.batch_size={case.batch_size}", "data.num_workers=0",
         f"training.precision={precision}", "training.epochs=1000", "training.save_every=0"],
    )  # fmt: skip
    run = Path(tempfile.mkdtemp(dir=check.root, prefix="run_"))
    env = init_distributed(device=check.device.type)
    return build_pretrainer(cfg, train=[str(check.store)], val=[], text_model=str(text), run_dir=run, env=env)


def prepared_batches(trainer: Any, n: int) -> list[dict[str, Any]]:
    """``n`` collated training batches from the trainer's own loader (transforms and collator included)."""
    batches = []
    for batch in trainer.loader:
        batches.append({k: v.pin_memory() if trainer.env.device.type == "cuda" else v for k, v in batch.items()
                        if k in ("ecg", "input_ids", "attention_mask")})  # fmt: skip
        if len(batches) == n:
            break
    return batches


def tile(batch: dict[str, torch.Tensor], size: int) -> dict[str, torch.Tensor]:
    """``batch`` repeated along dim 0 and cut to ``size`` rows."""
    reps = math.ceil(size / batch["ecg"].shape[0])
    return {k: v.repeat(reps, *([1] * (v.dim() - 1)))[:size] for k, v in batch.items()}


def step_flops(trainer: Any, batch: dict[str, torch.Tensor]) -> tuple[float, float]:
    """(forward + backward, forward) matmul FLOPs of one training step on ``batch``."""
    from melp.models.flops import melp_training_flops

    model, device = trainer.model, trainer.env.device
    with torch.no_grad():  # the batch's padded sentence count, as the training forward sees it
        text = model.encode_text(batch["input_ids"].to(device), batch["attention_mask"].to(device))
    flops = melp_training_flops(
        model.config, batch_size=batch["ecg"].shape[0], text_length=batch["input_ids"].shape[1],
        n_sentences=text["sentence_mask"].shape[1], ecg_samples=batch["ecg"].shape[-1],
    )  # fmt: skip
    return flops.training, flops.forward


def measure_training(
    check: Check, case: Case, *, compile_model: bool, overrides: tuple[str, ...] = (), accum: int = 1
) -> dict[str, Any]:
    """Pairs/s, MFU and peak memory of the real training step (``accum`` micro-batches), eager or compiled.

    MFU counts model FLOPs only: the recomputation of activation checkpointing and the extra
    no-grad pass of exact accumulation are overhead, not model FLOPs.
    """
    overrides = (*overrides, "training.compile=true") if compile_model else overrides
    trainer = build_trainer(check, case, overrides=overrides)
    batches = prepared_batches(trainer, 4)
    if not batches:
        raise RuntimeError("the training loader yielded no batch")
    warmup, steps = check.args.warmup, check.args.steps

    def window(i: int) -> list[dict[str, Any]]:
        return [batches[(i * accum + j) % len(batches)] for j in range(accum)]

    began = time.perf_counter()
    for i in range(warmup):
        trainer.train_step(window(i))
    _sync(check.device)
    warmup_s = time.perf_counter() - began
    _reset_peak(check.device)
    began = time.perf_counter()
    for i in range(steps):
        trainer.train_step(window(i))
    _sync(check.device)
    elapsed = time.perf_counter() - began
    per_batch = [step_flops(trainer, b) for b in batches]
    flops = [per_batch[(i * accum + j) % len(batches)] for i in range(steps) for j in range(accum)]
    total_flops, forward_flops = sum(f[0] for f in flops), sum(f[1] for f in flops)
    pairs = steps * case.batch_size * accum
    achieved = total_flops / elapsed
    params = sum(p.numel() for p in trainer.model.parameters())
    result = {
        "preset": case.preset,
        "batch_size": case.batch_size,
        "compiled": compile_model,
        "overrides": list(overrides),
        "micro_batches_per_step": accum,
        "precision": trainer.cfg.training.precision,
        "input_samples": int(batches[0]["ecg"].shape[-1]),
        "text_length_mean": statistics.mean(b["input_ids"].shape[1] for b in batches),
        "params_m": round(params / 1e6, 2),
        "fused_adamw": bool(trainer.optimizer.defaults.get("fused")),
        "pairs_per_s": round(pairs / elapsed, 1),
        "s_per_step": round(elapsed / steps, 4),
        "gflops_per_pair": round(total_flops / pairs / 1e9, 2),
        "gflops_per_pair_3x_forward": round(3 * forward_flops / pairs / 1e9, 2),
        "achieved_tflops": round(achieved / 1e12, 2),
        "mfu": round(achieved / (check.peak * 1e12), 4) if check.peak else None,
        "peak_memory_gib": round(_peak_memory_gib(check.device), 2),
        "peak_memory_kind": "torch.cuda.max_memory_allocated" if check.device.type == "cuda" else "process peak RSS",
        "losses_finite": trainer.state.nonfinite_total == 0,
    }
    if compile_model:
        result["compile_s"] = round(warmup_s, 1)  # the first step compiles; later warm-up steps are short
    del trainer
    return result


def measure_embedding(check: Check, case: Case) -> dict[str, Any]:
    """ECGs/s of ``encode_ecg`` in inference (no gradients, bf16 autocast on CUDA)."""
    from melp.train.loop import autocast

    trainer = build_trainer(check, case)
    model = trainer.model.eval()
    size = 8 if check.args.quick else 256
    ecg = tile(prepared_batches(trainer, 1)[0], size)["ecg"].to(check.device)
    iters = 2 if check.args.quick else 10
    with torch.no_grad(), autocast(trainer.cfg.training.precision, check.device):
        for _ in range(2):
            model.encode_ecg(ecg, with_attention=False)
        _sync(check.device)
        began = time.perf_counter()
        for _ in range(iters):
            model.encode_ecg(ecg, with_attention=False)
        _sync(check.device)
    elapsed = time.perf_counter() - began
    del trainer, model
    return {"preset": case.preset, "batch_size": size, "ecgs_per_s": round(iters * size / elapsed, 1)}


def largest_batch(check: Check, case: Case, *, checkpoint: bool) -> dict[str, Any]:
    """The largest batch (a multiple of 32, or of the case's batch in quick mode) whose training step fits."""
    overrides = ("training.checkpoint_activations=true",) if checkpoint else ()
    trainer = build_trainer(check, case, overrides=overrides)
    base = prepared_batches(trainer, 1)[0]
    cap, grain = check.args.max_batch, (case.batch_size if check.args.quick else 32)
    tried: dict[int, bool] = {}

    def fits(size: int) -> bool:
        try:
            _reset_peak(check.device)
            trainer.train_step([tile(base, size)])
            _sync(check.device)
            tried[size] = True
        except (torch.OutOfMemoryError, RuntimeError) as err:  # cuBLAS/cuDNN report theirs as RuntimeError
            if not isinstance(err, torch.OutOfMemoryError) and not any(m in str(err) for m in OOM_MESSAGES):
                raise
            trainer.optimizer.zero_grad(set_to_none=True)
            tried[size] = False
        _release(check.device)
        return tried[size]

    ok, bad, size = 0, None, case.batch_size
    while size <= cap and fits(size):
        ok, size = size, size * 2
    bad = size if size <= cap else None
    while bad is not None and bad - ok > grain and len(tried) < 12:
        mid = (ok + bad) // 2 // grain * grain
        if mid in (ok, bad):
            break
        ok, bad = (mid, bad) if fits(mid) else (ok, mid)
    return {
        "preset": case.preset,
        "checkpoint_activations": checkpoint,
        "largest_batch": ok,
        "first_failure": bad,
        "capped_at": cap if bad is None else None,
        "tried": {str(k): v for k, v in sorted(tried.items())},
    }


def parity(check: Check) -> dict[str, Any]:
    """fp32 forward/backward of a micro model on the device against the CPU (the same weights and batch)."""
    from melp.losses import MELPLoss

    trainer = build_trainer(check, QUICK_CASES["micro"])
    cpu_model = trainer.model.to("cpu").eval()
    batch = prepared_batches(trainer, 1)[0]
    loss_fn = MELPLoss(pad_id=cpu_model.config.text.pad_token_id)

    def run(device: torch.device) -> tuple[float, dict[str, torch.Tensor]]:
        model = cpu_model.to(device)
        model.zero_grad(set_to_none=True)
        loss = loss_fn(model(**{k: v.to(device) for k, v in batch.items()}))["loss"]
        loss.backward()
        loss = loss.detach()
        grads = {n: p.grad.detach().to("cpu", torch.float64) for n, p in model.named_parameters() if p.grad is not None}
        return float(loss), grads

    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        ref_loss, ref = run(torch.device("cpu"))
        loss, got = run(check.device)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    norm = torch.stack([g.norm() for g in ref.values()]).norm()
    floor = 1e-3 * norm
    per_tensor = {n: float((got[n] - ref[n]).norm() / torch.maximum(ref[n].norm(), floor)) for n in ref}
    whole = float(torch.stack([(got[n] - ref[n]).norm() for n in ref]).norm() / norm)
    loss_rel = abs(loss - ref_loss) / max(abs(ref_loss), 1e-12)
    tolerances = {"loss_rel": 1e-5, "grad_tensor_rel_max": 1e-3, "grad_whole_rel": 1e-4}
    worst = max(per_tensor, key=per_tensor.get)  # type: ignore[arg-type]
    return {
        "devices": f"{check.device} vs cpu, fp32, TF32 off, dropout off",
        "loss_cpu": ref_loss,
        "loss_device": loss,
        "loss_rel": loss_rel,
        "grad_tensor_rel_max": per_tensor[worst],
        "grad_tensor_worst": worst,
        "grad_whole_rel": whole,
        "n_grad_tensors": len(ref),
        "tolerances": tolerances,
        "passed": loss_rel <= tolerances["loss_rel"] and per_tensor[worst] <= tolerances["grad_tensor_rel_max"]
        and whole <= tolerances["grad_whole_rel"],
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--quick", action="store_true", help="the micro case only, a few steps (for CPU / CI)")
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=["paper", "tiny"])
    parser.add_argument("--warmup", type=int, help="warm-up steps per measurement (default 5; quick 1)")
    parser.add_argument("--steps", type=int, help="measured steps (default 20; quick 2)")
    parser.add_argument("--max-batch", type=int, help="largest batch tried by the search (default 2048; quick 16)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile measurements")
    parser.add_argument("--peak-tflops", type=float, help="dense bf16 peak of the device (default: looked up by name)")
    parser.add_argument("--budget-s", type=float, default=450.0, help="phases that would not fit are skipped")
    parser.add_argument("--out", default=str(RESULTS_DIR / "gpu_check.json"), help="results JSON")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("CUDA is not available; run with --device cpu --quick for the CPU smoke test")
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 5)
    args.steps = args.steps if args.steps is not None else (2 if args.quick else 20)
    args.max_batch = args.max_batch if args.max_batch is not None else (16 if args.quick else 2048)
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True  # as melp pretrain does
    check = Check(args)
    print(f"device: {check.device_info['name']}, dense bf16 peak {check.peak} TFLOPS", flush=True)
    cases = QUICK_CASES if args.quick else {k: CASES[k] for k in args.cases}
    check.phase("parity", 30, lambda: parity(check))
    for name, case in cases.items():
        check.phase(f"{name}/train_eager", 40, lambda case=case: measure_training(check, case, compile_model=False))
    first = next(iter(cases))
    check.phase(f"{first}/embed", 20, lambda: measure_embedding(check, cases[first]))
    for ckpt in (False, True):
        label = f"{first}/largest_batch" + ("_checkpointed" if ckpt else "")
        check.phase(label, 60, lambda ckpt=ckpt: largest_batch(check, cases[first], checkpoint=ckpt))
    levers = {
        "train_eager_checkpointed": (("training.checkpoint_activations=true",), 1),
        "train_eager_exact_accum4": (("training.grad_accum=4", "training.grad_accum_mode=exact"), 4),
    }
    for label, (overrides, accum) in levers.items():
        check.phase(
            f"{first}/{label}",
            40,
            lambda o=overrides, a=accum: measure_training(
                check, cases[first], compile_model=False, overrides=o, accum=a
            ),
        )
    if not args.no_compile and not args.quick:
        for name, case in cases.items():
            check.phase(
                f"{name}/train_compiled", 150, lambda case=case: measure_training(check, case, compile_model=True)
            )
    print(f"wrote {args.out} ({time.perf_counter() - check.start:.0f} s)")
    failed = [k for k, v in check.results.items() if "error" in v or v.get("passed") is False]
    return 1 if failed else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
