"""Stage 1 of MELP (spec §5): a cardiology text encoder by masked language modelling.

With ``contrastive_steps`` the masked-LM is followed by a sentence↔report contrastive phase
(:mod:`melp.train.text_contrastive`), melp's stand-in for the contrastive pretraining that the
paper's MedCPT start brings.

The reference repository has no code for this stage (it downloads ``fuyingw/heart_bert``). Here a
WordPiece tokenizer is trained on the reports of the given stores (plus optional extra text
files), then a BERT masked-LM is trained from scratch, or an existing BERT is continued with its own
tokenizer. Masking is the standard BERT recipe through transformers'
``DataCollatorForLanguageModeling``: 15 % of the tokens, of which 80 % become [MASK], 10 % a random
token and 10 % stay. The result is a Hugging Face directory (``config.json``, ``model.safetensors``,
tokenizer files) that ``transformers.AutoModel`` and stage 2's ``MELP.from_text_model`` load.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import BertConfig, BertForMaskedLM, DataCollatorForLanguageModeling

from melp.config import save_config
from melp.data import open_store
from melp.models.tokenizer import build_bert_config, load_tokenizer, train_wordpiece_tokenizer
from melp.train.config import TextPretrainConfig
from melp.train.optim import build_optimizer, clipped_step
from melp.train.schedule import build_scheduler
from melp.train.text_contrastive import check_contrastive_settings, train_sentence_report

logger = logging.getLogger(__name__)

# (hidden, layers, heads, feed-forward, default vocabulary) of each from-scratch size
BERT_SIZES: dict[str, tuple[int, int, int, int, int]] = {
    "micro": (64, 2, 2, 256, 1000),
    "tiny": (256, 4, 4, 1024, 2000),
    "base": (768, 12, 12, 3072, 30522),
}
MAX_POSITIONS = 512


def collect_texts(stores: Sequence[str | Path], extra_text: Sequence[str | Path] = ()) -> list[str]:
    """Non-empty reports of ``stores`` followed by the non-empty lines of ``extra_text`` files."""
    texts: list[str] = []
    for path in stores:
        reports = open_store(path).meta["report"].astype(str).str.strip()
        kept = [r for r in reports if r]
        logger.info("%s: %d reports (%d empty skipped)", path, len(kept), len(reports) - len(kept))
        texts.extend(kept)
    for path in extra_text:
        lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
        texts.extend(line for line in lines if line)
    if not texts:
        raise ValueError(f"no text found in stores {list(map(str, stores))} and files {list(map(str, extra_text))}")
    return texts


def bert_config(size: str, *, vocab_size: int, pad_token_id: int) -> BertConfig:
    """A from-scratch BERT configuration of the named size."""
    if size not in BERT_SIZES:
        raise ValueError(f"unknown BERT size {size!r}; expected one of {sorted(BERT_SIZES)}")
    hidden, layers, heads, ffn, _ = BERT_SIZES[size]
    return build_bert_config(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_layers=layers,
        num_heads=heads,
        intermediate_size=ffn,
        max_position_embeddings=MAX_POSITIONS,
        pad_token_id=pad_token_id,
    )


def _build(cfg: TextPretrainConfig, texts: list[str]) -> tuple[Any, BertForMaskedLM]:
    if cfg.init_from:
        tokenizer = load_tokenizer(cfg.init_from)
        model = BertForMaskedLM.from_pretrained(cfg.init_from)
        model.resize_token_embeddings(len(tokenizer))
        logger.info("continuing %s (vocabulary %d, its own tokenizer)", cfg.init_from, len(tokenizer))
        return tokenizer, model
    vocab_size = cfg.vocab_size or BERT_SIZES[cfg.size][4]
    tokenizer = train_wordpiece_tokenizer(texts, vocab_size=vocab_size)
    torch.manual_seed(cfg.seed)
    model = BertForMaskedLM(bert_config(cfg.size, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id))
    logger.info(
        "BERT %s from scratch: vocabulary %d, %.2f M parameters", cfg.size, len(tokenizer), model.num_parameters() / 1e6
    )
    return tokenizer, model


def _mlm_loader(cfg: TextPretrainConfig, tokenizer: Any, texts: list[str]) -> DataLoader[Any]:
    """Tokenised texts, shuffled by ``cfg.seed``, masked on the fly (15 %; 80/10/10).

    Token ids are kept as one int32 array per text (about 10x less memory than lists of Python
    ints at MIMIC-IV-ECG scale); the collator pads them and finds the special tokens itself.
    """
    encoded = tokenizer(texts, truncation=True, max_length=cfg.max_length)["input_ids"]
    examples = [{"input_ids": np.asarray(ids, dtype=np.int32)} for ids in encoded]
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=cfg.mlm_probability, seed=cfg.seed)
    return DataLoader(
        examples,  # type: ignore[arg-type]
        batch_size=cfg.batch_size,
        shuffle=True,
        collate_fn=collator,
        generator=torch.Generator().manual_seed(cfg.seed),
        drop_last=len(examples) > cfg.batch_size,
    )


def train_text_encoder(
    cfg: TextPretrainConfig, *, stores: Sequence[str | Path], out: str | Path, device: str | None = None
) -> Path:
    """Train the tokenizer and the masked-LM; write the Hugging Face directory ``out``.

    Args:
        cfg: the stage-1 config.
        stores: stores whose reports form the corpus.
        out: output directory (``metrics.jsonl`` and ``pretrain_text_config.yaml`` go beside the model files).
        device: ``cuda``/``cpu``; default: CUDA when available.

    Returns:
        ``out``.
    """
    check_contrastive_settings(cfg)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "pretrain_text_config.yaml")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    texts = collect_texts(stores, cfg.extra_text)
    tokenizer, model = _build(cfg, texts)
    model.to(torch.device(device))  # type: ignore[arg-type]
    loader = _mlm_loader(cfg, tokenizer, texts)
    total = cfg.max_steps or cfg.epochs * len(loader)
    optimizer = build_optimizer(model, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.999), eps=1e-8)
    scheduler = build_scheduler(
        optimizer, lr=cfg.lr, min_lr=0.0, warmup_steps=min(cfg.warmup_steps, total // 2), total_steps=total
    )
    model.train()
    step, running, started = 0, 0.0, time.perf_counter()
    with (out / "metrics.jsonl").open("a", encoding="utf-8") as log, tqdm(total=total, desc="pretrain-text") as bar:
        while step < total:
            for batch in loader:
                loss = model(**{k: v.to(device) for k, v in batch.items()}).loss
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"masked-LM loss is {loss.item()} at step {step}; lower text lr")
                clipped_step(
                    loss, parameters=model.parameters(), optimizer=optimizer, scheduler=scheduler, max_norm=1.0
                )
                step += 1
                running += loss.item()
                bar.update(1)
                bar.set_postfix(mlm_loss=f"{loss.item():.3f}")
                if step % cfg.log_every == 0 or step == total:
                    n = cfg.log_every if step % cfg.log_every == 0 else step % cfg.log_every
                    record = {
                        "step": step,
                        "split": "train",
                        "phase": "mlm",
                        "mlm_loss": running / n,
                        "lr": scheduler.get_last_lr()[0],
                        "texts_per_s": step * cfg.batch_size / (time.perf_counter() - started),
                    }
                    log.write(json.dumps(record) + "\n")
                    log.flush()
                    running = 0.0
                if step >= total:
                    break
        if cfg.contrastive_steps:
            train_sentence_report(
                cfg,
                model=model,
                tokenizer=tokenizer,
                texts=texts,
                device=torch.device(device),
                log=log,
                first_step=step,
            )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    logger.info("text encoder written to %s (%d masked-LM, %d contrastive steps)", out, step, cfg.contrastive_steps)
    return out
