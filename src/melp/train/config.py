"""The stage-2 pretraining run config (spec §7): one typed dataclass tree, loaded strictly.

Loaded with :func:`melp.config.load_config` (defaults ← YAML/TOML file ← dotted ``key=value``
overrides); unknown keys and values of the wrong type fail with the dotted path of the key. The
resolved config is written to ``RUN_DIR/config.yaml`` and inside every checkpoint.

Defaults follow the paper where it is clear (AdamW lr 2e-4, weight decay 0.2, betas (0.9, 0.95),
loss weights 1/2/0.2, seed 42, random lead masking keeping each lead with probability 0.5) and fix
the reference code's defects elsewhere (spec §9 items 26-28): a real linear warm-up then one cosine
to ``min_lr`` instead of warm restarts, and no weight decay on norms, biases, queries, embeddings and
the logit scale unless ``optim.decay_norms_and_biases`` restores the paper's decay-everything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from melp.config import load_config
from melp.models.config import MELPConfig


@dataclass
class OptimConfig:
    """AdamW settings (spec §7).

    Attributes:
        text_lr_scale: learning-rate multiplier of the text encoder's trainable parameters
            (``model.text``); 1 is the paper's single learning rate.
    """

    lr: float = 2e-4
    weight_decay: float = 0.2
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    decay_norms_and_biases: bool = False
    text_lr_scale: float = 1.0


@dataclass
class ScheduleConfig:
    """Linear warm-up over ``warmup_steps`` optimizer steps, then a cosine from ``lr`` to ``min_lr``."""

    warmup_steps: int = 500
    min_lr: float = 1e-8


@dataclass
class DataConfig:
    """Batches and transforms.

    Attributes:
        batch_size: pairs per process per micro-batch (reports are cut to ``model.text.max_length`` tokens) (the global batch is
            ``batch_size × world_size × grad_accum``).
        num_workers: DataLoader worker processes per rank.
        lead_mask_keep: probability of keeping each lead (random lead masking, spec §4.2); ``None`` disables it.
        The normalisation and the value of masked leads are input conventions of the model
        (``model.normalization``, ``model.mask_value``), so evaluation reads them from the saved model.
        val_tasks: zero-shot label set of each ``--val`` store (same order); empty infers it from
            the store's ``source`` (``synthetic`` → ``synthetic``, ``ptbxl`` → ``ptbxl_super``, ...).
        val_batch_size: ECGs per process when embedding the validation stores.
    """

    batch_size: int = 64
    num_workers: int = 4
    lead_mask_keep: float | None = 0.5
    val_tasks: list[str] = field(default_factory=list)
    val_batch_size: int = 128


@dataclass
class TrainingConfig:
    """Length, precision, checkpointing and safeguards of the run.

    Attributes:
        epochs: passes over the training stores.
        max_steps: stop after this many optimizer steps (0: run all epochs).
        grad_accum: micro-batches per optimizer step.
        grad_clip: max global gradient norm (0 disables clipping).
        precision: ``bf16`` autocasts on CUDA only (CPU bf16 is slower without AMX); TF32 is on for CUDA.
        compile: wrap the model in ``torch.compile``.
        checkpoint_activations: recompute the ECG transformer layers and the text BERT layers in the
            backward pass instead of storing their activations (less memory, ≈ 25–30 % more FLOPs).
        grad_accum_mode: ``per_micro_batch`` sums the gradients of each micro-batch's own loss (its
            CLIP and local losses see only that micro-batch's negatives); ``exact`` computes the
            losses over the whole accumulation window (GradCache-style: the gradients equal those
            of one batch of ``batch_size × grad_accum``, at the cost of one extra no-grad forward pass).
        seed: seeds python, numpy and torch (each rank adds its rank) and the data order.
        save_every: checkpoint every N optimizer steps (0: only at epoch ends and the end).
        keep_last: step checkpoints kept on disk (the best one is kept separately).
        val_every: validate every N steps (0: at the end of each epoch).
        early_stopping_patience: stop after this many validations without improvement (0: never).
        max_nonfinite_steps: consecutive steps with a non-finite loss or gradient that stop the run.
        log_every: write train metrics every N steps.
        tensorboard: also log to ``RUN_DIR/tensorboard`` (needs the ``tensorboard`` package).
    """

    epochs: int = 100
    max_steps: int = 0
    grad_accum: int = 1
    grad_clip: float = 1.0
    precision: Literal["fp32", "bf16"] = "bf16"
    compile: bool = False
    checkpoint_activations: bool = False
    grad_accum_mode: Literal["per_micro_batch", "exact"] = "per_micro_batch"
    seed: int = 42
    save_every: int = 1000
    keep_last: int = 3
    val_every: int = 0
    early_stopping_patience: int = 5
    max_nonfinite_steps: int = 10
    log_every: int = 10
    tensorboard: bool = False


@dataclass
class LossConfig:
    """Weights of the three MELP losses (spec §3.4: 1·CLIP + 2·caption + 0.2·local).

    ``local_loss_gather`` gathers beats and sentences across ranks for the local loss (the
    reference computes it per GPU; spec §9 item 16). ``local_alpha`` chooses the scores of the
    local loss's beat attention: ``"dot"`` (the paper's raw dot products) or ``"cosine"``
    (L2-normalised beats and sentences, which do not saturate the softmax; docs/losses.md).
    """

    clip_weight: float = 1.0
    caption_weight: float = 2.0
    local_weight: float = 0.2
    local_loss_gather: bool = False
    local_alpha: Literal["dot", "cosine"] = "dot"


@dataclass
class PretrainConfig:
    """The whole stage-2 run."""

    model: MELPConfig = field(default_factory=MELPConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    loss: LossConfig = field(default_factory=LossConfig)


def load_pretrain_config(path: str | Path | None = None, overrides: list[str] | None = None) -> PretrainConfig:
    """Defaults ← the file at ``path`` ← dotted ``overrides``; validated."""
    cfg = load_config(PretrainConfig, path, overrides)
    validate_pretrain_config(cfg)
    return cfg


def validate_pretrain_config(cfg: PretrainConfig) -> None:
    """Range checks the type checker cannot express; raises ``ValueError`` naming the key."""
    checks = [
        (cfg.optim.lr > 0, "optim.lr must be > 0"),
        (cfg.optim.text_lr_scale >= 0, "optim.text_lr_scale must be >= 0"),
        (cfg.optim.weight_decay >= 0, "optim.weight_decay must be >= 0"),
        (all(0 <= b < 1 for b in cfg.optim.betas), "optim.betas must lie in [0, 1)"),
        (0 <= cfg.schedule.min_lr <= cfg.optim.lr, "schedule.min_lr must lie in [0, optim.lr]"),
        (cfg.schedule.warmup_steps >= 0, "schedule.warmup_steps must be >= 0"),
        (cfg.data.batch_size >= 1, "data.batch_size must be >= 1"),
        (cfg.data.num_workers >= 0, "data.num_workers must be >= 0"),
        (cfg.data.lead_mask_keep is None or 0 < cfg.data.lead_mask_keep <= 1, "data.lead_mask_keep must lie in (0, 1]"),
        (cfg.model.text.max_length >= 4, "model.text.max_length must be >= 4"),
        (cfg.training.epochs >= 1, "training.epochs must be >= 1"),
        (cfg.training.max_steps >= 0, "training.max_steps must be >= 0"),
        (cfg.training.grad_accum >= 1, "training.grad_accum must be >= 1"),
        (cfg.training.grad_clip >= 0, "training.grad_clip must be >= 0"),
        (cfg.training.keep_last >= 1, "training.keep_last must be >= 1"),
        (cfg.training.max_nonfinite_steps >= 1, "training.max_nonfinite_steps must be >= 1"),
        (cfg.training.log_every >= 1, "training.log_every must be >= 1"),
        (min(cfg.training.save_every, cfg.training.val_every) >= 0, "training.save_every/val_every must be >= 0"),
    ]
    errors = [msg for ok, msg in checks if not ok]
    if errors:
        raise ValueError("invalid pretraining config: " + "; ".join(errors))


@dataclass
class TextPretrainConfig:
    """Stage 1 (spec §5): WordPiece tokenizer + BERT masked-LM on report text.

    Attributes:
        size: BERT size when training from scratch (``micro``, ``tiny`` or ``base`` = BERT-base).
        init_from: a local Hugging Face BERT directory (or a hub name when online) to continue from;
            its own tokenizer is kept. Empty: train a tokenizer and a BERT from scratch.
        vocab_size: WordPiece vocabulary when training from scratch (0: the size preset's).
        max_length: tokens per text, [CLS] and [SEP] included.
        mlm_probability: fraction of tokens selected for prediction (80 % [MASK], 10 % random, 10 % kept).
        batch_size: texts per step.
        lr: peak AdamW learning rate.
        weight_decay: AdamW weight decay (not on norms, biases, embeddings).
        warmup_steps: linear warm-up steps.
        epochs: passes over the texts.
        max_steps: stop after this many steps (0: run all epochs).
        seed: seeds the data order, masking and initialisation.
        log_every: write a metrics line every N steps.
        extra_text: further text files (one passage per line) added to the corpus.
        contrastive_steps: steps of the sentence↔report contrastive phase after the masked-LM
            (:mod:`melp.train.text_contrastive`; melp's addition for encoders trained from scratch,
            which lack the contrastive pretraining of the paper's MedCPT start). 0: masked-LM only,
            as the paper.
        contrastive_batch_size: reports (and sentences) per contrastive step.
        contrastive_lr: peak AdamW learning rate of the contrastive phase (same warm-up rule).
        contrastive_temperature: softmax temperature of the contrastive logits.
    """

    size: Literal["micro", "tiny", "base"] = "tiny"
    init_from: str = ""
    vocab_size: int = 0
    max_length: int = 128
    mlm_probability: float = 0.15
    batch_size: int = 32
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup_steps: int = 100
    epochs: int = 3
    max_steps: int = 0
    seed: int = 42
    log_every: int = 10
    extra_text: list[str] = field(default_factory=list)
    contrastive_steps: int = 0
    contrastive_batch_size: int = 64
    contrastive_lr: float = 5e-4
    contrastive_temperature: float = 0.05
