"""Stage 2 under ``torchrun --nproc_per_node=2`` (gloo): completes, ranks agree, and matches one process with the same global batch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from melp.configs import preset_path
from melp.data import build_store, open_store
from melp.data.synthetic import SOURCE, SynthItem, process_item
from melp.models.tokenizer import build_bert_config, build_text_model_dir, train_wordpiece_tokenizer

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_S = 150
STEPS = 3

# Runs one pretraining job (under torchrun or alone) and saves every rank's final weights.
DRIVER = """
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

torch.set_num_threads(1)
from melp.cli.pretrain import build_pretrainer
from melp.train import distributed as D
from melp.train.config import load_pretrain_config

config, train, val, text, out, *overrides = sys.argv[1:]
env = D.init_distributed(device="cpu")
trainer = build_pretrainer(
    load_pretrain_config(config, overrides), train=[train], val=[val], text_model=text, run_dir=Path(out), env=env
)
if env.is_main:
    save_file({k: v.detach().clone().contiguous() for k, v in trainer.model.state_dict().items()}, f"{out}/init.safetensors")
trainer.fit()
save_file({k: v.contiguous() for k, v in trainer.model.state_dict().items()}, f"{out}/rank{env.rank}.safetensors")

# A loss that is NaN on rank 1 only: both ranks must skip together and both must raise, not hang.
cfg = load_pretrain_config(config, [*overrides, "training.max_nonfinite_steps=2"])
nan_run = build_pretrainer(cfg, train=[train], val=[], text_model=text, run_dir=Path(out) / "nan", env=env)
loss_fn = nan_run.loss_fn
def poisoned(outputs):
    losses = loss_fn(outputs)
    if env.rank == 1:
        losses["loss"] = losses["loss"] * float("nan")
    return losses
nan_run.loss_fn = poisoned
try:
    nan_run.fit()
except Exception as err:
    Path(f"{out}/nan_rank{env.rank}.txt").write_text(f"{type(err).__name__}: {err} | step {nan_run.state.step}")
D.cleanup()
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same 4 steps with 2 processes × batch 4 and with 1 process × batch 8 (no dropout anywhere)."""
    root = tmp_path_factory.mktemp("ddp")
    stores = {}
    for name, n, seed in (("train", 32, 3), ("val", 16, 4)):
        items = [SynthItem(seed=seed, index=i, fs=100) for i in range(n)]
        build_store(root / name, items, process_item, fs=100, seconds=10.0, source=SOURCE, progress=False)
        stores[name] = root / name
    tokenizer = train_wordpiece_tokenizer(list(open_store(stores["train"]).meta["report"]), vocab_size=500)
    bert = build_bert_config(
        vocab_size=len(tokenizer), hidden_size=64, num_layers=2, num_heads=2, intermediate_size=128
    )
    bert.hidden_dropout_prob = bert.attention_probs_dropout_prob = 0.0
    text = build_text_model_dir(root / "text", tokenizer=tokenizer, config=bert, seed=0)
    driver = root / "driver.py"
    driver.write_text(DRIVER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    common = [str(preset_path("micro")), str(stores["train"]), str(stores["val"]), str(text)]
    overrides = [f"training.max_steps={STEPS}", "loss.local_loss_gather=true"]
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(driver)]
    cmd = [*launch, *common, str(root / "ddp"), "data.batch_size=4", *overrides]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"torchrun did not finish within {TIMEOUT_S} s (a hang?): {err.stderr!r}")
    assert proc.returncode == 0, proc.stderr[-4000:]
    _single_process_run(common, root / "single", [*overrides, "data.batch_size=8"])
    config = preset_path("micro")
    return {"ddp": root / "ddp", "single": root / "single", "config": config, "text": text, **stores}


def _single_process_run(common: list[str], out: Path, overrides: list[str]) -> None:
    """The driver's job in this process (world size 1), without paying another interpreter start-up."""
    from melp.cli.pretrain import build_pretrainer
    from melp.train.config import load_pretrain_config
    from melp.train.distributed import init_distributed

    config, train, val, text = common
    env = init_distributed(device="cpu")
    trainer = build_pretrainer(
        load_pretrain_config(config, overrides), train=[train], val=[val], text_model=text, run_dir=out, env=env
    )
    save_file(
        {k: v.detach().clone().contiguous() for k, v in trainer.model.state_dict().items()}, out / "init.safetensors"
    )
    trainer.fit()
    save_file({k: v.contiguous() for k, v in trainer.model.state_dict().items()}, out / "rank0.safetensors")


def _records(run: Path, split: str) -> list[dict]:
    return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["split"] == split]


@pytest.mark.distributed
def test_ranks_agree_and_the_run_completes(runs: dict[str, Path]) -> None:
    rank0, rank1 = (load_file(runs["ddp"] / f"rank{r}.safetensors") for r in range(2))
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    final = load_file(runs["ddp"] / "final" / "model.safetensors")
    assert all(torch.equal(rank0[k], final[k]) for k in rank0)
    assert [r["step"] for r in _records(runs["ddp"], "train")] == list(range(1, STEPS + 1))
    assert (runs["ddp"] / "checkpoints" / f"step_{STEPS:08d}" / "rng_rank1.pt").is_file()


@pytest.mark.distributed
def test_two_processes_match_one_process_with_the_same_global_batch(runs: dict[str, Path]) -> None:
    ddp, single = load_file(runs["ddp"] / "rank0.safetensors"), load_file(runs["single"] / "rank0.safetensors")
    assert ddp.keys() == single.keys()
    init = load_file(runs["single"] / "init.safetensors")
    assert all(torch.equal(init[k], load_file(runs["ddp"] / "init.safetensors")[k]) for k in init)
    keys = [k for k in init if init[k].is_floating_point()]
    moved = torch.cat([(single[k] - init[k]).flatten() for k in keys]).norm()
    apart = torch.cat([(ddp[k] - single[k]).flatten() for k in keys]).norm()
    # The caption cross-entropy is a mean over each rank's own tokens, so it differs slightly from the
    # global token mean of one process; CLIP and the (gathered) local loss see the same global batch.
    assert moved > 0 and apart < 0.1 * moved, (float(apart), float(moved))
    first_ddp, first_single = _records(runs["ddp"], "train")[0], _records(runs["single"], "train")[0]
    assert first_ddp["clip_loss"] == pytest.approx(first_single["clip_loss"], rel=1e-5)
    assert first_ddp["local_loss"] == pytest.approx(first_single["local_loss"], rel=1e-5)
    assert first_ddp["caption_loss"] == pytest.approx(first_single["caption_loss"], rel=5e-3)


@pytest.mark.distributed
def test_validation_uses_every_record_once(runs: dict[str, Path]) -> None:
    ddp, single = _records(runs["ddp"], "val")[-1], _records(runs["single"], "val")[-1]
    assert ddp["step"] == single["step"] == STEPS
    assert ddp["val_macro_auroc"] == pytest.approx(single["val_macro_auroc"], abs=0.02)


@pytest.mark.distributed
def test_nonfinite_loss_on_one_rank_stops_every_rank(runs: dict[str, Path]) -> None:
    for rank in range(2):
        message = (runs["ddp"] / f"nan_rank{rank}.txt").read_text()
        assert message.startswith("NonFiniteLossError: 2 consecutive steps"), message
        assert message.endswith("| step 1"), message


@pytest.mark.distributed
def test_a_two_process_checkpoint_resumes_in_one_process_at_the_same_data_position(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    from melp.cli.pretrain import build_pretrainer
    from melp.train.config import load_pretrain_config
    from melp.train.distributed import init_distributed

    run = tmp_path / "run"
    shutil.copytree(runs["ddp"] / "checkpoints", run / "checkpoints")

    def trainer(batch: int):  # type: ignore[no-untyped-def]
        cfg = load_pretrain_config(runs["config"], [f"data.batch_size={batch}", f"training.max_steps={STEPS + 1}"])
        return build_pretrainer(
            cfg,
            train=[str(runs["train"])],
            val=[],
            text_model=str(runs["text"]),
            run_dir=run,
            env=init_distributed(device="cpu"),
        )

    single = trainer(8)
    assert single.resume()
    # 3 steps × 2 ranks × 4 pairs were read: one process continues at pair 24 of the epoch's permutation
    assert (single.state.step, single.state.world_size, single.state.position) == (STEPS, 1, STEPS * 8)
    single.fit()
    assert single.state.step == STEPS + 1
    with pytest.raises(ValueError, match="pairs per step"):
        trainer(4).resume()
