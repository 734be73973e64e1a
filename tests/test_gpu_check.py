"""benchmarks/gpu_check.py in its CPU quick mode (so the one-shot GPU check cannot rot), and its peak table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmarks.gpu_check import main, peak_bf16_tflops


@pytest.mark.parametrize(
    ("name", "tflops"),
    [
        ("NVIDIA H100 80GB HBM3", 989.0),
        ("NVIDIA H100 PCIe", 756.0),
        ("NVIDIA H100 NVL", 835.0),
        ("NVIDIA H200", 989.0),
        ("NVIDIA GH200 480GB", 989.0),
        ("NVIDIA A100-SXM4-80GB", 312.0),
        ("NVIDIA L4", 121.0),
        ("Tesla V100-SXM2-16GB", None),  # no bf16 tensor cores: no MFU rather than a wrong one
    ],
)
def test_peak_lookup_by_device_name(name: str, tflops: float | None) -> None:
    assert peak_bf16_tflops(name) == tflops


@pytest.mark.slow
def test_quick_cpu_check_runs_every_phase(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.json"
    assert main(["--device", "cpu", "--quick", "--out", str(out)]) == 0
    results = json.loads(out.read_text())["results"]
    assert set(results) == {
        "parity", "micro/train_eager", "micro/embed", "micro/largest_batch", "micro/largest_batch_checkpointed",
        "micro/train_eager_checkpointed", "micro/train_eager_exact_accum4",
    }  # fmt: skip
    for key in ("micro/train_eager_checkpointed", "micro/train_eager_exact_accum4"):
        assert results[key]["pairs_per_s"] > 0 and results[key]["losses_finite"], results[key]
    assert results["micro/train_eager_exact_accum4"]["micro_batches_per_step"] == 4
    assert results["parity"]["passed"] and results["parity"]["n_grad_tensors"] > 50
    train = results["micro/train_eager"]
    assert train["pairs_per_s"] > 0 and train["losses_finite"] and train["mfu"] is None  # no peak for a CPU
    assert 0 < train["gflops_per_pair"] <= train["gflops_per_pair_3x_forward"]
    assert results["micro/embed"]["ecgs_per_s"] > 0
    for key in ("micro/largest_batch", "micro/largest_batch_checkpointed"):
        assert results[key]["largest_batch"] == 16 and results[key]["capped_at"] == 16
