"""The stage-2 MELP pretraining loop (spec §7; fixes spec §9 items 17, 19, 29 and 47).

One plain PyTorch loop serves one CPU, one GPU and ``torchrun`` jobs on many GPUs and nodes:
DDP without ``find_unused_parameters``, gradient accumulation under ``no_sync`` (per micro-batch, or
exact over the window: :mod:`melp.train.grad_cache`), activation checkpointing, clipping, bf16
autocast on CUDA and on CPUs with AMX (:func:`bf16_autocast_available`), the logit scale clamped
after every step, atomic checkpoints with the exact data position, zero-shot validation on predictions gathered from every rank (not averaged
per rank, and without duplicated records), best checkpoint and early stopping. A non-finite loss
or gradient skips the step on every rank at once (the decision is all-reduced, so no rank waits
in a collective the others never reach; the LR schedule counts updates, so it does not advance);
too many in a row raise :class:`NonFiniteLossError` on every rank instead of the reference's
``ipdb`` breakpoint. No anomaly detection is switched on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Subset, default_collate
from tqdm.auto import tqdm

from melp.data.tasks import TaskSpec
from melp.eval.metrics import auroc_columns
from melp.eval.prompts import class_prompts, load_prompt_bank
from melp.eval.zeroshot import build_class_embeddings, zeroshot_scores
from melp.train import distributed as D
from melp.train.activation_checkpointing import enable_activation_checkpointing
from melp.train.checkpoint import (
    TrainState,
    latest_checkpoint,
    load_training_state,
    restore_rng_state,
    save_best,
    save_checkpoint,
    step_dir_name,
)
from melp.train.config import PretrainConfig
from melp.train.grad_cache import exact_accumulation_step
from melp.train.optim import build_optimizer
from melp.train.precision import autocast, bf16_autocast_available
from melp.train.sampler import EpochSeededDataset, ResumableDistributedSampler
from melp.train.schedule import build_scheduler

logger = logging.getLogger(__name__)

LOSS_TERMS = ("loss", "clip_loss", "caption_loss", "local_loss")


class NonFiniteLossError(FloatingPointError):
    """Too many consecutive steps had a non-finite loss or gradient."""


@dataclass
class ValSet:
    """A labelled store for zero-shot validation (dataset built with the evaluation transform and ``task``)."""

    name: str
    dataset: Any
    task: TaskSpec


class MetricsLogger:
    """Appends one JSON object per line to ``path`` (and TensorBoard scalars when asked); rank 0 only."""

    def __init__(self, *, path: Path, tensorboard_dir: Path | None = None, enabled: bool = True) -> None:
        self.enabled = enabled
        self.path = path
        if enabled:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.writer: Any = None
        if enabled and tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                logger.warning("training.tensorboard=true but the tensorboard package is missing; logging JSONL only")
            else:
                self.writer = SummaryWriter(str(tensorboard_dir))

    def log(self, record: dict[str, Any]) -> None:
        """Write ``record`` (it must hold ``step`` and ``split``)."""
        if not self.enabled:
            return
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if isinstance(value, int | float) and key not in ("step", "epoch"):
                    self.writer.add_scalar(f"{record['split']}/{key}", value, record["step"])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class Pretrainer:
    """Runs stage 2 on an already built model, loss and training set.

    Args:
        cfg: the resolved run config (also saved in every checkpoint).
        model: the MELP model (unwrapped; moved to ``env.device`` here).
        tokenizer: saved with every checkpoint.
        loss_fn: maps the model's output dict to ``loss`` and the three terms.
        collator: turns dataset items into model batches (``ecg``, ``input_ids``, ``attention_mask``).
        train_sets: datasets of ECG-report pairs with ``reseed(seed)``, concatenated.
        val_sets: labelled stores for zero-shot validation (may be empty).
        run_dir: where checkpoints, ``metrics.jsonl`` and ``final/`` go.
        env: the process's place in the job.
    """

    def __init__(
        self,
        *,
        cfg: PretrainConfig,
        model: Any,
        tokenizer: Any,
        loss_fn: Any,
        collator: Any,
        train_sets: Sequence[Any],
        val_sets: Sequence[ValSet],
        run_dir: Path,
        env: D.DistEnv,
    ) -> None:
        tc, dc = cfg.training, cfg.data
        self.cfg, self.tokenizer, self.loss_fn, self.collator, self.env = cfg, tokenizer, loss_fn, collator, env
        self.val_sets, self.run_dir = list(val_sets), run_dir
        self.model = model.to(env.device)
        if tc.checkpoint_activations:
            enable_activation_checkpointing(self.model)
        self.ddp: Any = self.model
        if env.world_size > 1:
            ids = [env.device.index] if env.device.type == "cuda" else None
            self.ddp = DistributedDataParallel(self.model, device_ids=ids)
        self.forward = torch.compile(self.ddp) if tc.compile else self.ddp
        self.train_data = EpochSeededDataset(datasets=train_sets, seed=tc.seed)
        self.sampler = ResumableDistributedSampler(
            num_samples=len(self.train_data), rank=env.rank, world_size=env.world_size, seed=tc.seed
        )
        self.loader = DataLoader(
            self.train_data,
            batch_size=dc.batch_size,
            sampler=self.sampler,
            num_workers=dc.num_workers,
            collate_fn=collator,
            drop_last=True,
            pin_memory=env.device.type == "cuda",
            generator=torch.Generator().manual_seed(tc.seed),
        )
        window = dc.batch_size * tc.grad_accum
        self.steps_per_epoch = self.sampler.per_rank // window
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"{len(self.train_data)} training pairs are too few for {env.world_size} process(es) × "
                f"batch {dc.batch_size} × grad_accum {tc.grad_accum}"
            )
        full = tc.epochs * self.steps_per_epoch
        self.total_steps = min(tc.max_steps, full) if tc.max_steps else full
        oc = cfg.optim
        self.optimizer = build_optimizer(
            self.model, lr=oc.lr, weight_decay=oc.weight_decay, betas=oc.betas, eps=oc.eps,
            decay_norms_and_biases=oc.decay_norms_and_biases, lr_scales={"text.": oc.text_lr_scale},
        )  # fmt: skip
        self.scheduler = build_scheduler(
            self.optimizer, lr=oc.lr, min_lr=cfg.schedule.min_lr,
            warmup_steps=min(cfg.schedule.warmup_steps, self.total_steps), total_steps=self.total_steps,
        )  # fmt: skip
        self.state = TrainState(world_size=env.world_size, batch_size=dc.batch_size, grad_accum=tc.grad_accum)
        self.ckpt_dir = run_dir / "checkpoints"
        tb_dir = run_dir / "tensorboard" if tc.tensorboard else None
        self.metrics = MetricsLogger(path=run_dir / "metrics.jsonl", tensorboard_dir=tb_dir, enabled=env.is_main)
        self._window: list[dict[str, float]] = []
        self._window_start = time.perf_counter()
        self._last_val_step = -1
        if tc.precision == "bf16" and not bf16_autocast_available(env.device):
            logger.info("precision bf16: this CPU has no AMX, so the run computes in fp32")

    def resume(self) -> bool:
        """Restore weights, optimizer, scheduler, counters and RNG states from the newest checkpoint."""
        path = latest_checkpoint(self.ckpt_dir)
        if path is None:
            logger.info("no checkpoint under %s: starting from scratch", self.ckpt_dir)
            return False
        state, training, rng = load_training_state(path, rank=self.env.rank)
        now = self.state
        if state.global_batch != now.global_batch:
            raise ValueError(
                f"{path} was written with {state.global_batch} pairs per step ({state.world_size} process(es) × "
                f"batch {state.batch_size} × grad_accum {state.grad_accum}); this run has {now.global_batch} "
                f"({now.world_size} × {now.batch_size} × {now.grad_accum}), so its data position cannot be restored"
            )
        # rank r reads elements r, r + W, ... of the epoch's permutation: the first p samples of every
        # rank are the first p × W of the permutation, so the position converts between world sizes
        position = state.position * state.world_size // now.world_size
        state = replace(
            state, position=position, world_size=now.world_size, batch_size=now.batch_size, grad_accum=now.grad_accum
        )
        weights = type(self.model).from_pretrained(path).state_dict()
        self.model.load_state_dict(weights)
        self.optimizer.load_state_dict(training["optimizer"])
        self.scheduler.load_state_dict(training["scheduler"])
        if rng is None:
            logger.warning("%s has no RNG state for rank %d; random streams restart", path, self.env.rank)
        else:
            restore_rng_state(rng)
        self.state = state
        logger.info("resumed from %s: step %d, epoch %d, position %d", path, state.step, state.epoch, state.position)
        return True

    def fit(self) -> Path:
        """Train until ``total_steps``, the last epoch or early stopping; returns ``RUN_DIR/final``."""
        bar = tqdm(total=self.total_steps, initial=self.state.step, desc="pretrain", disable=not self.env.is_main)
        stop = self.state.step >= self.total_steps
        try:
            while not stop and self.state.epoch < self.cfg.training.epochs:
                stop = self._run_epoch(bar)
            bar.close()
            if self.val_sets and self._last_val_step != self.state.step:
                self._validate()
        finally:
            bar.close()
            self.metrics.close()
        if latest_checkpoint(self.ckpt_dir) != self.ckpt_dir / step_dir_name(self.state.step):
            self._save()
        final = self.run_dir / "final"
        if self.env.is_main:
            self.model.save_pretrained(final, tokenizer=self.tokenizer)
            logger.info("final model written to %s after %d steps", final, self.state.step)
        D.barrier()
        return final

    def _run_epoch(self, bar: Any) -> bool:
        """Steps through the rest of the current epoch; returns whether training should stop."""
        tc, st = self.cfg.training, self.state
        self.sampler.set_position(st.epoch, st.position)
        self.train_data.epoch = st.epoch
        window: list[dict[str, Any]] = []
        for batch in self.loader:
            window.append(batch)
            if len(window) < tc.grad_accum:
                continue
            self.train_step(window)
            window = []
            st.step += 1
            st.position += self.cfg.data.batch_size * tc.grad_accum
            bar.update(1)
            if self._after_step(bar):
                return True
            if st.step >= self.total_steps:
                break
        if st.position + self.cfg.data.batch_size * tc.grad_accum <= self.sampler.per_rank:
            return True
        st.epoch += 1
        st.position = 0
        stop = bool(self.val_sets) and tc.val_every == 0 and self._validate()
        self._save()
        return stop or st.step >= self.total_steps

    def _to_device(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The model inputs of a collated batch, on the device."""
        return {k: batch[k].to(self.env.device, non_blocking=True) for k in ("ecg", "input_ids", "attention_mask")}

    def _sync(self, last: bool) -> contextlib.AbstractContextManager[Any]:
        """The context of a micro-batch's backward: DDP's gradient sync is deferred to the last one."""
        return contextlib.nullcontext() if last or self.ddp is self.model else self.ddp.no_sync()

    def _accumulate(self, window: list[dict[str, Any]]) -> dict[str, float] | None:
        """Forward/backward of one window of micro-batches, each with its own loss; ``None`` if non-finite."""
        tc = self.cfg.training
        sums = dict.fromkeys(LOSS_TERMS, 0.0)
        for i, batch in enumerate(window):
            with self._sync(i == len(window) - 1):
                with autocast(tc.precision, self.env.device):
                    losses = self.loss_fn(self.forward(**self._to_device(batch)))
                if D.any_flag(not bool(torch.isfinite(losses["loss"].detach()))):
                    return None
                (losses["loss"] / len(window)).backward()
            for key in LOSS_TERMS:
                sums[key] += float(losses[key].detach()) / len(window)
        return sums

    def _accumulate_exact(self, window: list[dict[str, Any]]) -> dict[str, float] | None:
        """Forward/backward of one window whose losses span all its micro-batches (:mod:`melp.train.grad_cache`)."""
        losses = exact_accumulation_step(
            forward=self.forward, loss_fn=self.loss_fn, inputs=[self._to_device(b) for b in window], sync=self._sync,
            autocast=lambda: autocast(self.cfg.training.precision, self.env.device), any_nonfinite=D.any_flag,
        )  # fmt: skip
        return None if losses is None else {key: float(losses[key]) for key in LOSS_TERMS}

    def train_step(self, window: list[dict[str, Any]]) -> None:
        """Forward/backward over the micro-batches of one optimizer step, then the (possibly skipped) update."""
        tc = self.cfg.training
        exact = tc.grad_accum_mode == "exact" and len(window) > 1
        sums = self._accumulate_exact(window) if exact else self._accumulate(window)
        finite = sums is not None
        if finite:
            params = [p for p in self.model.parameters() if p.grad is not None]
            norm = torch.nn.utils.clip_grad_norm_(params, tc.grad_clip if tc.grad_clip > 0 else float("inf"))
            finite = not D.any_flag(not bool(torch.isfinite(norm)))
        if finite and sums is not None:
            self.optimizer.step()
            self.scheduler.step()  # the schedule counts updates: a skipped step leaves the LR where it was
            self.model.clamp_logit_scale_()
            self.state.nonfinite_consecutive = 0
            self._window.append(sums)
        else:
            self._skip_step()
        self.optimizer.zero_grad(set_to_none=True)

    def _skip_step(self) -> None:
        st, limit = self.state, self.cfg.training.max_nonfinite_steps
        st.nonfinite_total += 1
        st.nonfinite_consecutive += 1
        logger.warning(
            "step %d: non-finite loss or gradient, update skipped (%d in a row, %d in total)",
            st.step + 1, st.nonfinite_consecutive, st.nonfinite_total,
        )  # fmt: skip
        if st.nonfinite_consecutive >= limit:
            raise NonFiniteLossError(
                f"{st.nonfinite_consecutive} consecutive steps had a non-finite loss or gradient (limit "
                f"training.max_nonfinite_steps={limit}) up to step {st.step + 1}; lower optim.lr, use "
                "training.precision=fp32, or check the data"
            )

    def _after_step(self, bar: Any) -> bool:
        """Logging, periodic validation and checkpointing after a step; returns whether to stop early."""
        tc, st = self.cfg.training, self.state
        if st.step % tc.log_every == 0 or st.step == self.total_steps:
            self._log_train(bar)
        stop = bool(self.val_sets) and tc.val_every > 0 and st.step % tc.val_every == 0 and self._validate()
        if tc.save_every and st.step % tc.save_every == 0:
            self._save()
        return stop

    def _log_train(self, bar: Any) -> None:
        elapsed = time.perf_counter() - self._window_start
        n_steps = len(self._window)
        record: dict[str, Any] = {"step": self.state.step, "epoch": self.state.epoch, "split": "train"}
        for key in LOSS_TERMS:
            local = float(np.mean([w[key] for w in self._window])) if n_steps else float("nan")
            record[key] = D.all_reduce_mean(local)
        record["lr"] = self.scheduler.get_last_lr()[0]
        pairs = n_steps * self.cfg.data.batch_size * self.cfg.training.grad_accum * self.env.world_size
        record["pairs_per_s"] = pairs / max(elapsed, 1e-9)
        record["nonfinite_steps"] = self.state.nonfinite_total
        self.metrics.log(record)
        bar.set_postfix({k: f"{record[k]:.3f}" for k in LOSS_TERMS} | {"pairs/s": f"{record['pairs_per_s']:.1f}"})
        self._window = []
        self._window_start = time.perf_counter()

    def _tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Prompts tokenised exactly as training reports are (the collator's tokenisation)."""
        input_ids, attention_mask = self.collator.tokenize(texts)  # (P, L), (P, L)
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    @torch.no_grad()
    def _embed(self, val: ValSet) -> tuple[torch.Tensor, torch.Tensor]:
        """ECG latents (N, D) and labels (N, C) of the whole validation store, gathered from every rank."""
        shard = Subset(val.dataset, range(self.env.rank, len(val.dataset), self.env.world_size))
        loader = DataLoader(shard, batch_size=self.cfg.data.val_batch_size, collate_fn=default_collate)
        index, latents, labels = [], [], []
        for batch in loader:
            with autocast(self.cfg.training.precision, self.env.device):
                out = self.model.encode_ecg(batch["ecg"].to(self.env.device), with_attention=False)
            latents.append(out["ecg_latent"].float().cpu())  # (b, D)
            labels.append(batch["labels"].float())  # (b, C)
            index.append(torch.as_tensor(batch["index"]))
        empty_dim = self.cfg.model.embed_dim
        local_latent = torch.cat(latents) if latents else torch.zeros(0, empty_dim)
        local_labels = torch.cat(labels) if labels else torch.zeros(0, val.task.n_classes)
        local_index = torch.cat(index) if index else torch.zeros(0, dtype=torch.long)
        _, latent, label = D.gather_predictions(local_index, local_latent, local_labels)
        return latent, label

    @torch.no_grad()
    def _validate(self) -> bool:
        """Zero-shot macro AUROC on every validation store; best checkpoint; returns whether to stop early."""
        self.model.eval()
        self._last_val_step = self.state.step
        record: dict[str, Any] = {"step": self.state.step, "epoch": self.state.epoch, "split": "val"}
        bank = load_prompt_bank()
        per_store = []
        for val in self.val_sets:
            latent, labels = self._embed(val)
            class_emb = build_class_embeddings(
                class_prompts(val.task.classes, bank), val.task.classes,
                tokenize=self._tokenize, encode_text=self.model.encode_text, device=self.env.device,
            )  # fmt: skip
            auroc = auroc_columns(labels.numpy(), zeroshot_scores(latent, class_emb).numpy())  # (C,)
            macro = float(np.nanmean(auroc)) if np.isfinite(auroc).any() else None
            record[f"macro_auroc/{val.name}"] = macro  # per store; val_macro_auroc is their mean
            if macro is not None:
                per_store.append(macro)
        self.model.train()
        metric = float(np.mean(per_store)) if per_store else None
        record["val_macro_auroc"] = metric
        st = self.state
        if metric is not None and (st.best_metric is None or metric > st.best_metric):
            st.best_metric, st.bad_validations = metric, 0
            if self.env.is_main:
                save_best(
                    self.ckpt_dir, model=self.model, tokenizer=self.tokenizer, run_config=self.cfg, metrics=record
                )
        else:
            st.bad_validations += 1
        record["best_val_macro_auroc"] = st.best_metric
        self.metrics.log(record)
        logger.info("validation at step %d: %s", st.step, record)
        patience = self.cfg.training.early_stopping_patience
        stop = patience > 0 and st.bad_validations >= patience
        if D.any_flag(stop):
            logger.info(
                "early stopping: no improvement in %d validations (best %s)", st.bad_validations, st.best_metric
            )
            return True
        return False

    def _save(self) -> None:
        save_checkpoint(
            self.ckpt_dir, model=self.model, tokenizer=self.tokenizer, run_config=self.cfg, state=self.state,
            optimizer=self.optimizer, scheduler=self.scheduler, rank=self.env.rank,
            keep_last=self.cfg.training.keep_last, barrier=D.barrier,
        )  # fmt: skip
