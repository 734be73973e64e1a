"""Two gloo processes under torchrun against one process: losses, gradients and evaluation gathers (spec §3.3, §9 item 29)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from melp.train.distributed import (
    all_gather_with_grad,
    all_reduce_mean,
    any_flag,
    drop_duplicate_indices,
    gather_predictions,
    gather_tensors_for_eval,
    init_distributed,
    is_main_process,
)

SCRIPT = Path(__file__).parent / "dist_scripts" / "clip_ddp.py"
TIMEOUT_S = 180


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """Launch the script once with two processes; a hang fails instead of blocking."""
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(SCRIPT), str(out)]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"torchrun did not finish within {TIMEOUT_S} s: {err.stderr!r}")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


@pytest.mark.distributed
@pytest.mark.parametrize("case", ["clip_equal", "clip_uneven", "all_equal", "all_uneven"])
def test_two_processes_equal_one_process(two_ranks: list[dict], case: str) -> None:
    for rank in two_ranks:
        assert rank["backend"] == "gloo" and rank["world_size"] == 2
        got = rank[case]
        assert got["clip_mean"] == pytest.approx(got["clip_ref"], rel=1e-6)
        assert got["local_mean"] == pytest.approx(got["local_ref"], rel=1e-6)
        assert got["grad_max_abs_diff"] < 1e-6 * max(got["grad_norm"], 1.0)


@pytest.mark.distributed
def test_eval_gather_keeps_every_sample_once(two_ranks: list[dict]) -> None:
    for rank in two_ranks:
        assert rank["gathered_rows"] == [0, 10, 20, 30, 40, 50, 60, 70]
        assert rank["dedup_index"] == list(range(7))
        assert rank["dedup_preds_match"]
        assert rank["any_flag"] is True and rank["no_flag"] is False
        assert rank["rank_mean"] == 0.5
    assert sorted(two_ranks[0]["sampler_local"] + two_ranks[1]["sampler_local"]) == [0, 0, 1, 2, 3, 4, 5, 6]


def test_helpers_without_process_group() -> None:
    env = init_distributed(device="cpu")
    assert (env.rank, env.world_size, env.backend, env.is_main) == (0, 1, None, True)
    assert is_main_process()
    x = torch.randn(3, 2, requires_grad=True)
    assert all_gather_with_grad(x) is x
    assert gather_tensors_for_eval(x) is x
    assert all_reduce_mean(torch.tensor(2.5)) == 2.5
    assert any_flag(True) and not any_flag(False)
    index, preds = gather_predictions(torch.tensor([2, 0, 1]), torch.tensor([20.0, 0.0, 10.0]))
    assert index.tolist() == [0, 1, 2] and preds.tolist() == [0.0, 10.0, 20.0]


def test_drop_duplicate_indices_keeps_first_occurrence() -> None:
    index = torch.tensor([3, 1, 3, 0, 1])
    values = torch.tensor([30, 10, 31, 0, 11])
    kept_index, kept = drop_duplicate_indices(index, values)
    assert kept_index.tolist() == [0, 1, 3] and kept.tolist() == [0, 10, 30]
    with pytest.raises(ValueError, match="1-D integer"):
        drop_duplicate_indices(index.float())
