"""Pretraining end to end: schedule, decay groups, data order, stage 1, stage 2, kill-and-resume, non-finite steps."""

from __future__ import annotations

import itertools
import json
import math
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from melp.configs import preset_path
from melp.data import build_store, open_store
from melp.data.synthetic import SOURCE, SynthItem, process_item
from melp.train.checkpoint import latest_checkpoint, list_checkpoints
from melp.train.optim import param_groups
from melp.train.sampler import ResumableDistributedSampler
from melp.train.schedule import warmup_cosine_factor

REPO = Path(__file__).resolve().parents[1]
MICRO = preset_path("micro")
FS = 100


def _store(path: Path, *, n: int, seed: int) -> Path:
    items = [SynthItem(seed=seed, index=i, fs=FS) for i in range(n)]
    build_store(path, items, process_item, fs=FS, seconds=10.0, source=SOURCE, progress=False)
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 48-pair training store, a 24-record validation store and a stage-1 micro text encoder."""
    from melp.train.config import TextPretrainConfig
    from melp.train.text_pretrain import train_text_encoder

    root = tmp_path_factory.mktemp("corpus")
    train, val = _store(root / "train", n=48, seed=1), _store(root / "val", n=24, seed=2)
    cfg = TextPretrainConfig(size="micro", max_steps=40, batch_size=16, lr=2e-3, warmup_steps=4, log_every=5)
    text = train_text_encoder(cfg, stores=[train], out=root / "text", device="cpu")
    return {"train": train, "val": val, "text": text}


def _metrics(path: Path, split: str) -> list[dict]:
    lines = path.read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("split") == split]


def _pretrain_args(corpus: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return ["pretrain", "--config", str(MICRO), "--train", str(corpus["train"]), "--text-model", str(corpus["text"]),
            "--out", str(out), "--device", "cpu", *extra]  # fmt: skip


# ---- units: schedule, weight-decay groups, data order ------------------------------------------------


def test_warmup_then_cosine_known_values() -> None:
    f = [warmup_cosine_factor(s, warmup_steps=4, total_steps=12, min_ratio=0.1) for s in range(14)]
    assert f[:4] == [0.25, 0.5, 0.75, 1.0]
    assert f[4] == pytest.approx(1.0)
    assert f[8] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert f[12] == pytest.approx(0.1) and f[13] == pytest.approx(0.1)
    assert all(a >= b for a, b in itertools.pairwise(f[4:]))


class _Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.proj = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)
        self.queries = nn.Parameter(torch.zeros(3, 4))
        self.logit_scale = nn.Parameter(torch.tensor(1.0))
        self.frozen = nn.Linear(4, 4)
        self.frozen.requires_grad_(False)


def test_param_groups_exclude_norms_biases_queries_embeddings_scale() -> None:
    groups = param_groups(_Toy(), weight_decay=0.2)
    by_decay = {g["weight_decay"]: set(g["names"]) for g in groups}
    assert by_decay[0.2] == {"proj.weight"}
    assert by_decay[0.0] == {"embed.weight", "proj.bias", "norm.weight", "norm.bias", "queries", "logit_scale"}
    everything = param_groups(_Toy(), weight_decay=0.2, decay_norms_and_biases=True)
    assert len(everything) == 1 and len(everything[0]["names"]) == 7  # frozen ones never reach the optimizer


def test_lr_scales_give_a_prefix_its_own_groups_and_learning_rate() -> None:
    from melp.train.optim import build_optimizer
    from melp.train.schedule import build_scheduler

    groups = param_groups(_Toy(), weight_decay=0.2, lr_scales={"proj.": 0.1, "norm.": 1.0})
    by_key = {(g["lr_scale"], g["weight_decay"]): set(g["names"]) for g in groups}
    assert by_key == {
        (1.0, 0.0): {"embed.weight", "norm.weight", "norm.bias", "queries", "logit_scale"},
        (0.1, 0.2): {"proj.weight"},
        (0.1, 0.0): {"proj.bias"},
    }
    optimizer = build_optimizer(
        _Toy(), lr=2e-3, weight_decay=0.2, betas=(0.9, 0.95), eps=1e-8, lr_scales={"proj.": 0.1}
    )
    scheduler = build_scheduler(optimizer, lr=2e-3, min_lr=0.0, warmup_steps=4, total_steps=10)
    optimizer.step()
    scheduler.step()
    lrs = {g["lr_scale"]: g["lr"] for g in optimizer.param_groups}
    assert lrs[1.0] == pytest.approx(2e-3 * 0.5) and lrs[0.1] == pytest.approx(2e-4 * 0.5)  # warm-up step 2 of 4


def test_cpu_optimizer_is_fused_and_updates_as_the_per_tensor_adamw() -> None:
    from melp.train.optim import build_optimizer

    torch.manual_seed(0)
    model, reference = _Toy(), _Toy()
    reference.load_state_dict(model.state_dict())
    kwargs = {"lr": 1e-2, "weight_decay": 0.2, "betas": (0.9, 0.95), "eps": 1e-8}
    fused = build_optimizer(model, **kwargs)  # type: ignore[arg-type]
    assert fused.defaults["fused"]
    groups = param_groups(reference, weight_decay=0.2)
    loop = torch.optim.AdamW(groups, lr=1e-2, betas=(0.9, 0.95), eps=1e-8, foreach=False)
    for _ in range(20):
        for net in (model, reference):
            net.zero_grad()
            net.proj(net.norm(net.embed(torch.arange(3)) + net.queries)).square().sum().backward()
            net.logit_scale.grad = torch.tensor(0.5)
        fused.step()
        loop.step()
    for (name, p), q in zip(model.named_parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-6, msg=name)


def test_bf16_autocasts_on_the_cpu_only_with_amx() -> None:
    from melp.train.precision import autocast

    cpu = torch.device("cpu")
    with autocast("bf16", cpu):
        assert torch.is_autocast_enabled("cpu") == torch.cpu._is_amx_tile_supported()
    with autocast("fp32", cpu):
        assert not torch.is_autocast_enabled("cpu")


def test_sampler_shards_partition_each_epoch_and_resume_offsets() -> None:
    shards = [ResumableDistributedSampler(num_samples=11, rank=r, world_size=3, seed=5) for r in range(3)]
    for s in shards:
        s.set_epoch(2)
    seen = [i for s in shards for i in s]
    assert len(seen) == 9 and len(set(seen)) == 9  # trimmed to a multiple of 3, no duplicates
    assert sorted(seen) != seen  # shuffled
    again = ResumableDistributedSampler(num_samples=11, rank=1, world_size=3, seed=5)
    again.set_position(2, 2)
    assert list(again) == list(shards[1])[2:]
    again.set_epoch(3)
    assert list(again) != list(shards[1])


# ---- stage 1 and stage 2 on the synthetic corpus ------------------------------------------------------


def test_stage1_mlm_loss_falls_and_saves_a_bert_directory(corpus: dict[str, Path]) -> None:
    from transformers import AutoModel

    losses = [r["mlm_loss"] for r in _metrics(corpus["text"] / "metrics.jsonl", "train")]
    assert losses[-1] < losses[0] - 0.5
    bert = AutoModel.from_pretrained(corpus["text"])
    assert bert.config.hidden_size == 64 and (corpus["text"] / "tokenizer.json").is_file()


def test_stage1_cli_continues_an_existing_bert_with_its_tokenizer(corpus: dict[str, Path], tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from melp.cli.main import main

    out = tmp_path / "continued"
    argv = [
        "pretrain-text",
        "--train",
        str(corpus["train"]),
        f"init_from={corpus['text']}",
        "max_steps=2",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    assert AutoTokenizer.from_pretrained(out).get_vocab() == AutoTokenizer.from_pretrained(corpus["text"]).get_vocab()
    assert [r["step"] for r in _metrics(out / "metrics.jsonl", "train")] == [2]
    assert f"init_from: {corpus['text']}" in (out / "pretrain_text_config.yaml").read_text()


def test_stage2_losses_fall_and_the_model_reloads_and_embeds(corpus: dict[str, Path], tmp_path: Path) -> None:
    from melp.cli.main import main
    from melp.models import MELP

    out = tmp_path / "run"
    args = _pretrain_args(corpus, out, "--val", str(corpus["val"]), "training.epochs=4", "training.val_every=6")
    assert main(args) == 0
    train = _metrics(out / "metrics.jsonl", "train")
    assert [r["step"] for r in train] == list(range(1, 25))
    first, last = np.mean([r["loss"] for r in train[:4]]), np.mean([r["loss"] for r in train[-4:]])
    assert last < first - 0.5, (first, last)
    val = _metrics(out / "metrics.jsonl", "val")
    assert [r["step"] for r in val] == [6, 12, 18, 24] and all(0 <= r["val_macro_auroc"] <= 1 for r in val)
    assert all(r["macro_auroc/val"] == r["val_macro_auroc"] for r in val)  # one store: its name, and the mean
    assert (out / "config.yaml").is_file() and (out / "checkpoints" / "best" / "best.json").is_file()
    model = MELP.from_pretrained(out / "final")
    ecg = torch.from_numpy(np.asarray(open_store(corpus["val"]).signals[:3], dtype=np.float32))
    emb = model.encode_ecg(ecg)["ecg_latent"]
    assert emb.shape == (3, 64) and torch.isfinite(emb).all()
    assert torch.allclose(emb.norm(dim=-1), torch.ones(3), atol=1e-4)


def test_early_stopping_after_patience_validations_without_improvement(corpus: dict[str, Path], tmp_path: Path) -> None:
    from melp.cli.pretrain import build_pretrainer
    from melp.train.config import load_pretrain_config
    from melp.train.distributed import init_distributed

    # an LR of 1e-12 (written 1.0e-12: YAML 1.1 reads 1e-12 as a string) leaves the scores, hence the AUROC, unchanged: the second validation is no improvement
    overrides = ["optim.lr=1.0e-12", "schedule.min_lr=0", "training.val_every=2", "training.early_stopping_patience=1",
                 "training.max_steps=10"]  # fmt: skip
    cfg = load_pretrain_config(MICRO, overrides)
    trainer = build_pretrainer(
        cfg, train=[str(corpus["train"])], val=[str(corpus["val"])], text_model=str(corpus["text"]),
        run_dir=tmp_path / "run", env=init_distributed(device="cpu"),
    )  # fmt: skip
    trainer.fit()
    assert trainer.state.step == 4 and trainer.state.bad_validations == 1
    val = _metrics(tmp_path / "run" / "metrics.jsonl", "val")
    assert [r["step"] for r in val] == [2, 4] and val[0]["val_macro_auroc"] == val[1]["best_val_macro_auroc"]
    assert json.loads((tmp_path / "run" / "checkpoints" / "best" / "best.json").read_text())["step"] == 2


def test_existing_run_needs_resume(corpus: dict[str, Path], tmp_path: Path) -> None:
    from melp.cli.main import main

    out = tmp_path / "run"
    assert main(_pretrain_args(corpus, out, "--max-steps", "2")) == 0
    with pytest.raises(SystemExit, match="pass --resume"):
        main(_pretrain_args(corpus, out, "--max-steps", "4"))
    assert main(_pretrain_args(corpus, out, "--max-steps", "4", "--resume")) == 0
    assert [r["step"] for r in _metrics(out / "metrics.jsonl", "train")] == [1, 2, 3, 4]


def _subprocess(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """``melp ARGS`` in a fresh single-threaded interpreter (the in-process tests also run on one thread)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-c", "import sys, torch; torch.set_num_threads(1); from melp.cli.main import main; "
           "sys.exit(main(sys.argv[1:]))", *args]  # fmt: skip
    with log.open("wb") as sink:
        return subprocess.Popen(cmd, env=env, stdout=sink, stderr=subprocess.STDOUT)


def test_sigkill_and_resume_ends_with_identical_weights(corpus: dict[str, Path], tmp_path: Path) -> None:
    """12 steps over two epochs, a checkpoint every 2 steps; one run is SIGKILLed after its first checkpoint."""
    from melp.cli.main import main

    run = ["--max-steps", "12", "--save-every", "2", "training.epochs=2"]
    killed_dir = tmp_path / "killed"
    log = tmp_path / "killed.log"
    killed = _subprocess(_pretrain_args(corpus, killed_dir, *run), log)
    deadline = time.monotonic() + 120
    while latest_checkpoint(killed_dir / "checkpoints") is None and killed.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    assert killed.returncode == -signal.SIGKILL, f"the run ended before it could be killed: {log.read_text()[-2000:]}"
    steps = [int(p.name.split("_")[1]) for p in list_checkpoints(killed_dir / "checkpoints")]
    assert steps and max(steps) < 12
    assert main(_pretrain_args(corpus, killed_dir, *run, "--resume")) == 0
    assert main(_pretrain_args(corpus, tmp_path / "whole", *run)) == 0
    a = load_file(tmp_path / "whole" / "final" / "model.safetensors")
    b = load_file(killed_dir / "final" / "model.safetensors")
    assert a.keys() == b.keys()
    differing = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differing, differing[:5]


# ---- non-finite losses ---------------------------------------------------------------------------------


def _trainer(corpus: dict[str, Path], out: Path, *overrides: str):  # type: ignore[no-untyped-def]
    from melp.cli.pretrain import build_pretrainer
    from melp.train.config import load_pretrain_config
    from melp.train.distributed import init_distributed

    cfg = load_pretrain_config(MICRO, list(overrides))
    env = init_distributed(device="cpu")
    return build_pretrainer(
        cfg, train=[str(corpus["train"])], val=[], text_model=str(corpus["text"]), run_dir=out, env=env
    )


class _NaNAt:
    """Wraps a loss; the loss of the listed call numbers (1-based) becomes NaN."""

    def __init__(self, loss_fn, calls: set[int] | None) -> None:  # type: ignore[no-untyped-def]
        self.loss_fn, self.calls, self.n = loss_fn, calls, 0

    def __call__(self, outputs):  # type: ignore[no-untyped-def]
        self.n += 1
        losses = self.loss_fn(outputs)
        if self.calls is None or self.n in self.calls:
            losses["loss"] = losses["loss"] * float("nan")
        return losses


def test_nonfinite_losses_are_skipped_and_counted(corpus: dict[str, Path], tmp_path: Path) -> None:
    trainer = _trainer(corpus, tmp_path / "run", "training.max_steps=5")
    trainer.loss_fn = _NaNAt(trainer.loss_fn, {2, 3})
    trainer.fit()
    assert trainer.state.nonfinite_total == 2 and trainer.state.nonfinite_consecutive == 0
    assert [r["nonfinite_steps"] for r in _metrics(tmp_path / "run" / "metrics.jsonl", "train")] == [0, 1, 2, 2, 2]
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_a_skipped_first_step_leaves_the_schedule_where_it_was(corpus: dict[str, Path], tmp_path: Path) -> None:
    trainer = _trainer(corpus, tmp_path / "run", "training.max_steps=3", "training.log_every=1")
    trainer.loss_fn = _NaNAt(trainer.loss_fn, {1})
    first_lr = trainer.scheduler.get_last_lr()[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit()
    assert not [w for w in caught if "lr_scheduler.step()" in str(w.message)]
    assert trainer.state.nonfinite_total == 1 and trainer.scheduler.last_epoch == 2  # 3 steps, 2 updates
    lrs = [r["lr"] for r in _metrics(tmp_path / "run" / "metrics.jsonl", "train")]
    assert lrs[0] == pytest.approx(first_lr) and lrs[1] != pytest.approx(first_lr)


def test_too_many_nonfinite_steps_stop_with_a_clear_error(corpus: dict[str, Path], tmp_path: Path) -> None:
    from melp.train.loop import NonFiniteLossError

    trainer = _trainer(corpus, tmp_path / "run", "training.max_nonfinite_steps=3")
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.loss_fn = _NaNAt(trainer.loss_fn, None)
    with pytest.raises(NonFiniteLossError, match=r"3 consecutive steps .*training.max_nonfinite_steps=3"):
        trainer.fit()
    assert trainer.state.step == 2  # the third bad step raised before being counted as done
    assert all(torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())


@pytest.mark.parametrize(("mask_value", "order"), [("zero", ["Normalize", "RandomLeadMask"]),
                                                   ("baseline", ["RandomLeadMask", "Normalize"])])  # fmt: skip
def test_training_masks_leads_as_the_model_config_says(
    corpus: dict[str, Path], tmp_path: Path, mask_value: str, order: list[str]
) -> None:
    """The lead-mask value is the model's input convention (default: the reference's 0 after scaling)."""
    overrides = [] if mask_value == "zero" else [f"model.mask_value={mask_value}"]
    trainer = _trainer(corpus, tmp_path / "run", *overrides)
    assert trainer.model.config.mask_value == mask_value
    transform = trainer.train_data.datasets[0].transform
    assert [type(t).__name__ for t in transform.transforms] == order


def test_a_run_directory_resolves_to_its_best_checkpoint_else_final(tmp_path: Path) -> None:
    from melp.eval.random_baseline import model_name
    from melp.train.checkpoint import resolve_model_dir

    run = tmp_path / "run"
    (run / "final").mkdir(parents=True)
    (run / "final" / "config.json").write_text("{}")
    assert resolve_model_dir(run) == run / "final"
    (run / "checkpoints" / "best").mkdir(parents=True)
    (run / "checkpoints" / "best" / "config.json").write_text("{}")
    assert resolve_model_dir(run) == run / "checkpoints" / "best"
    assert resolve_model_dir(run / "final") == run / "final"  # a model directory is taken as it is
    assert model_name(run / "checkpoints" / "best") == "run/best" and model_name(run / "final") == "run/final"
    with pytest.raises(FileNotFoundError, match="neither a saved model"):
        resolve_model_dir(tmp_path)
