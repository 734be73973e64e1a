"""Stage 1's optional second phase: sentence↔report contrastive training of the text encoder.

The paper's text encoder starts from MedCPT, a BERT trained contrastively on PubMed query–article
pairs, and is then continued by masked-LM on the reports (spec §5). A BERT trained from scratch by
masked-LM alone has no such sentence space: its mean-pooled states of different reports are nearly
parallel, and a class prompt is closer to the reports that do *not* state the finding than to
those that do (docs/performance.md, "The text side"). This phase gives a from-scratch encoder what
MedCPT's pretraining gives the paper's, from the reports themselves and no labels: each step draws
``B`` reports and one sentence of each, and trains the BERT with
:func:`melp.losses.sentence_report.sentence_report_loss` to embed each sentence next to every
report of the batch that contains it.

Both sides are encoded exactly as stage 2 reads a report: ``[BOS] w1 … wn [SEP]``, causal
attention (``is_decoder``), mean of the word tokens' last-layer states (``model.text.pooling:
mean``, before the projection heads, which stage 2 trains from scratch).

Dims: B batch, L tokens, H hidden.
"""

from __future__ import annotations

import json
import logging
import time
from typing import IO, Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import BertConfig, BertForMaskedLM, BertModel

from melp.data.collate import ECGReportCollator
from melp.losses.sentence_report import sentence_report_loss
from melp.models.text_encoder import mean_pool, word_mask
from melp.models.tokenizer import SENTENCE_DELIMITER, split_sentences
from melp.train.config import TextPretrainConfig
from melp.train.optim import build_optimizer, clipped_step
from melp.train.schedule import build_scheduler

logger = logging.getLogger(__name__)

Sentence = tuple[int, ...]


def report_sentences(tokenizer: Any, texts: list[str], *, max_length: int) -> list[list[Sentence]]:
    """Each text's sentences as word-token tuples, cut where ``TextEncoder.sentence_embeddings`` cuts.

    Texts are truncated to ``max_length - 2`` word tokens, as the collator truncates them.
    """
    words = tokenizer(texts, add_special_tokens=False, truncation=True, max_length=max_length - 2)["input_ids"]
    delimiter = tokenizer.convert_tokens_to_ids(SENTENCE_DELIMITER)
    specials = set(tokenizer.all_special_ids)
    return [[tuple(s) for s in split_sentences(w, delimiter_id=delimiter, special_ids=specials)] for w in words]


def sample_batch(
    reports: list[list[Sentence]], rows: np.ndarray, rng: np.random.Generator
) -> tuple[list[Sentence], list[Sentence], torch.Tensor]:
    """One sentence drawn from each of ``reports[rows]``.

    Returns:
        The drawn sentences, the reports as flat token tuples, and ``positives`` (B, B) bool:
        ``positives[i, j]`` when report ``j`` contains sentence ``i``.
    """
    chosen = [reports[r] for r in rows]
    queries = [sentences[rng.integers(len(sentences))] for sentences in chosen]
    contents = [set(sentences) for sentences in chosen]
    positives = torch.tensor([[q in c for c in contents] for q in queries], dtype=torch.bool)
    flat = [tuple(token for sentence in sentences for token in sentence) for sentences in chosen]
    return queries, flat, positives


def mean_word_states(bert: BertModel, ids: torch.Tensor, mask: torch.Tensor, specials: torch.Tensor) -> torch.Tensor:
    """(B, H) mean last-layer state of the word tokens of ``ids`` (B, L): ``pooling: mean``'s state."""
    hidden = bert(input_ids=ids, attention_mask=mask).last_hidden_state  # (B, L, H)
    return mean_pool(hidden, word_mask(ids, mask, specials))


def check_contrastive_settings(cfg: TextPretrainConfig) -> None:
    """Raise ``ValueError`` for settings the phase cannot run with (checked before stage 1 starts)."""
    if cfg.contrastive_steps < 0 or cfg.contrastive_batch_size < 2 or cfg.contrastive_temperature <= 0:
        raise ValueError(
            "contrastive_steps must be >= 0, contrastive_batch_size >= 2 and contrastive_temperature > 0; got "
            f"{cfg.contrastive_steps}, {cfg.contrastive_batch_size}, {cfg.contrastive_temperature}"
        )


def train_sentence_report(
    cfg: TextPretrainConfig,
    *,
    model: BertForMaskedLM,
    tokenizer: Any,
    texts: list[str],
    device: torch.device,
    log: IO[str],
    first_step: int,
) -> None:
    """Run ``cfg.contrastive_steps`` steps of the phase on ``model``'s BERT, in place.

    A causal copy of the BERT is trained and copied back, so the masked-LM head stays tied to the
    updated word embeddings. Metrics lines go to ``log``, numbered on from ``first_step``.
    """
    check_contrastive_settings(cfg)
    reports = report_sentences(tokenizer, texts, max_length=cfg.max_length)
    usable = np.flatnonzero([len(r) > 0 for r in reports])
    if len(usable) < 2:
        raise ValueError(f"the contrastive phase needs at least 2 texts with words, got {len(usable)}")
    batch = min(cfg.contrastive_batch_size, len(usable))
    bert = BertModel(BertConfig.from_dict({**model.config.to_dict(), "is_decoder": True}), add_pooling_layer=False)
    bert.load_state_dict(model.bert.state_dict())
    bert.to(device)  # type: ignore[arg-type]
    bert.train()
    collator = ECGReportCollator(tokenizer, max_length=cfg.max_length)
    specials = torch.tensor(sorted(set(tokenizer.all_special_ids)), device=device)
    steps = cfg.contrastive_steps
    optimizer = build_optimizer(
        bert, lr=cfg.contrastive_lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.999), eps=1e-8
    )
    scheduler = build_scheduler(
        optimizer, lr=cfg.contrastive_lr, min_lr=0.0, warmup_steps=min(cfg.warmup_steps, steps // 5), total_steps=steps
    )
    rng = np.random.default_rng(cfg.seed)
    order, cursor, started = rng.permutation(usable), 0, time.perf_counter()
    bar = tqdm(total=steps, desc="pretrain-text (contrastive)")
    for step in range(1, steps + 1):
        if cursor + batch > len(order):
            order, cursor = rng.permutation(usable), 0
        queries, flat, positives = sample_batch(reports, order[cursor : cursor + batch], rng)
        cursor += batch
        ids_q, mask_q = (t.to(device) for t in collator.pack(queries))
        ids_r, mask_r = (t.to(device) for t in collator.pack(flat))
        loss = sentence_report_loss(
            F.normalize(mean_word_states(bert, ids_q, mask_q, specials), dim=-1),
            F.normalize(mean_word_states(bert, ids_r, mask_r, specials), dim=-1),
            positives.to(device),
            temperature=cfg.contrastive_temperature,
        )
        if not torch.isfinite(loss):
            raise FloatingPointError(f"contrastive loss is {loss.item()} at step {step}; lower contrastive_lr")
        clipped_step(loss, parameters=bert.parameters(), optimizer=optimizer, scheduler=scheduler, max_norm=1.0)
        bar.update(1)
        bar.set_postfix(contrastive_loss=f"{loss.item():.3f}")
        if step % cfg.log_every == 0 or step == steps:
            record = {
                "step": first_step + step,
                "split": "train",
                "phase": "contrastive",
                "contrastive_loss": loss.item(),
                "lr": scheduler.get_last_lr()[0],
                "texts_per_s": step * batch / (time.perf_counter() - started),
            }
            log.write(json.dumps(record) + "\n")
            log.flush()
    bar.close()
    model.bert.load_state_dict(bert.state_dict())
    logger.info("sentence-report contrastive phase: %d steps of %d reports, last loss %.3f", steps, batch, loss.item())
