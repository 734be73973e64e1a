"""``melp pretrain``: stage 2, MELP pretraining on stores (spec §7; issue 5, item 2).

Examples::

    melp pretrain --config tiny --train stores/synth --val stores/synth-val \
        --text-model runs/text --out runs/melp
    torchrun --nproc_per_node=4 -m melp.cli.main pretrain --config melp_paper \
        --train stores/mimic --val stores/ptbxl-val --text-model runs/heart-bert --out runs/paper
    melp pretrain ... --out runs/melp --resume          # continue from the last checkpoint

``key=value`` arguments override the config file (``training.max_steps=100``,
``data.batch_size=32``); unknown keys fail. The resolved config goes to ``RUN_DIR/config.yaml`` and
into every checkpoint; the final model to ``RUN_DIR/final/``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from melp.cli.pretrain_text import split_overrides

COMMAND = "pretrain"
HELP = "Stage 2: pretrain MELP on ECG-report stores (one process or torchrun)."

logger = logging.getLogger(__name__)

# default zero-shot label set of a validation store, by the store's ``source``
VAL_TASK_BY_SOURCE = {"synthetic": "synthetic", "ptbxl": "ptbxl_super", "cpsc2018": "cpsc2018", "csn": "csn"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        help="a shipped preset name (micro, tiny, melp_paper) or a YAML/TOML/JSON run config file",
    )
    parser.add_argument("--train", nargs="+", required=True, metavar="STORE", help="ECG-report stores to train on")
    parser.add_argument(
        "--val", nargs="+", default=[], metavar="STORE", help="labelled stores for zero-shot validation"
    )
    parser.add_argument(
        "--text-model", required=True, help="stage-1 Hugging Face BERT directory (or hub name when online)"
    )
    parser.add_argument(
        "--init-ecg",
        type=Path,
        metavar="MODEL_DIR",
        help="start the ECG tower and heads from this melp model (e.g. `melp convert-reference` of the released "
        "encoder); its ECG side (shape, queries, lead order, input format) replaces the config's. Pass it again "
        "with --resume",
    )
    parser.add_argument("--out", type=Path, required=True, help="run directory")
    parser.add_argument("--max-steps", type=int, help="overrides training.max_steps")
    parser.add_argument("--save-every", type=int, help="overrides training.save_every")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    parser.add_argument("--device", choices=("cpu", "cuda"), help="default: CUDA when available")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. data.batch_size=32")


def _val_task(store: Any, configured: str | None) -> str:
    if configured:
        return configured
    sources = sorted(set(store.meta["source"].astype(str)))
    if len(sources) != 1 or sources[0] not in VAL_TASK_BY_SOURCE:
        raise SystemExit(
            f"cannot infer the zero-shot label set of validation store {store.path} (sources {sources}); "
            f"set data.val_tasks, e.g. data.val_tasks=[ptbxl_super]"
        )
    return VAL_TASK_BY_SOURCE[sources[0]]


def build_pretrainer(
    cfg: Any, *, train: list[str], val: list[str], text_model: str, run_dir: Path, env: Any, init_ecg: Any = None
) -> Any:
    """The :class:`~melp.train.loop.Pretrainer` of a run: model, loss, collator and datasets from ``cfg``.

    ``init_ecg``: a :class:`~melp.models.MELP` whose ECG side initialises the model's (``cfg.model``
    must carry its ECG side already, see :func:`melp.models.melp.ecg_side_config`).
    """
    from melp.data import open_store
    from melp.data.collate import ECGReportCollator
    from melp.data.datasets import ECGDataset
    from melp.data.transforms import build_transform
    from melp.losses import MELPLoss
    from melp.models import MELP
    from melp.models.tokenizer import load_tokenizer
    from melp.train.distributed import seed_everything
    from melp.train.loop import Pretrainer, ValSet

    tc, dc, mc = cfg.training, cfg.data, cfg.model
    if dc.val_tasks and len(dc.val_tasks) != len(val):
        raise SystemExit(f"data.val_tasks names {len(dc.val_tasks)} tasks for {len(val)} --val stores")

    def dataset(path: str, *, train_mode: bool, task: str | None = None) -> Any:
        store = open_store(path)
        if abs(store.seconds - mc.seconds) > 1e-6:
            raise SystemExit(
                f"store {path} holds {store.seconds} s records; the model expects model.seconds={mc.seconds}"
            )
        keep = dc.lead_mask_keep if train_mode else None
        transform = build_transform(
            normalization=mc.normalization, lead_mask_keep=keep, mask_value=mc.mask_value,
            fs_in=store.fs, fs_out=mc.fs, seed=tc.seed,
        )  # fmt: skip
        return ECGDataset(store, transform=transform, task=task)

    seed_everything(tc.seed)
    tokenizer = load_tokenizer(text_model)
    model = MELP.from_text_model(config=mc, text_model_dir=text_model, tokenizer=tokenizer)
    if init_ecg is not None:
        model.load_ecg_side_(init_ecg)
        logger.info("ECG tower and heads initialised from %s", init_ecg.config.ecg)
    seed_everything(tc.seed + env.rank)
    lc = cfg.loss
    loss_fn = MELPLoss(
        clip_weight=lc.clip_weight, caption_weight=lc.caption_weight, local_weight=lc.local_weight,
        pad_id=int(tokenizer.pad_token_id), rank=env.rank, world_size=env.world_size,
        local_loss_gather=lc.local_loss_gather,
        local_alpha=lc.local_alpha,
    )  # fmt: skip
    val_sets = []
    for i, path in enumerate(val):
        task = _val_task(open_store(path), dc.val_tasks[i] if dc.val_tasks else None)
        val_data = dataset(path, train_mode=False, task=task)
        val_sets.append(ValSet(name=Path(path).name, dataset=val_data, task=val_data.task))
    return Pretrainer(
        cfg=cfg, model=model, tokenizer=tokenizer, loss_fn=loss_fn,
        collator=ECGReportCollator(tokenizer, max_length=mc.text.max_length),
        train_sets=[dataset(p, train_mode=True) for p in train], val_sets=val_sets, run_dir=run_dir, env=env,
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    import torch

    from melp.config import save_config
    from melp.configs import resolve_config
    from melp.train import distributed as D
    from melp.train.checkpoint import latest_checkpoint
    from melp.train.config import load_pretrain_config

    train, overrides = split_overrides(args.train, args.overrides)
    val, overrides = split_overrides(args.val, overrides)
    if args.max_steps is not None:
        overrides.append(f"training.max_steps={args.max_steps}")
    if args.save_every is not None:
        overrides.append(f"training.save_every={args.save_every}")
    cfg = load_pretrain_config(resolve_config(args.config) if args.config else None, overrides)
    init_ecg = None
    if args.init_ecg is not None:
        from dataclasses import replace

        from melp.models import MELP
        from melp.models.melp import ecg_side_config

        init_ecg = MELP.from_pretrained(args.init_ecg)
        cfg = replace(cfg, model=ecg_side_config(cfg.model, init_ecg.config))
    for store in [*train, *val]:
        if not Path(store).is_dir():
            raise SystemExit(f"{store} is not a store directory")
    run_dir: Path = args.out
    if latest_checkpoint(run_dir / "checkpoints") is not None and not args.resume:
        raise SystemExit(f"{run_dir} already holds checkpoints; pass --resume to continue it, or choose another --out")
    env = D.init_distributed(device=args.device)
    try:
        if env.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        if env.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, run_dir / "config.yaml")
        trainer = build_pretrainer(
            cfg, train=train, val=val, text_model=args.text_model, run_dir=run_dir, env=env, init_ecg=init_ecg
        )
        if args.resume:
            trainer.resume()
        final = trainer.fit()
        if env.is_main:
            logger.info("done: model at %s, metrics at %s", final, run_dir / "metrics.jsonl")
    finally:
        D.cleanup()
    return 0
