"""Report tokenizers and small BERTs built offline (spec §2.1 tokenizer; spec §5 Heart-BERT stage 1).

A WordPiece vocabulary trained on the report corpus (a few thousand pieces) keeps the embedding and
caption head small, which is what makes CPU training practical (environment notes §4).
"""

from __future__ import annotations

import logging
import string
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import AutoTokenizer, BertConfig, BertForMaskedLM, PreTrainedTokenizerBase, PreTrainedTokenizerFast

logger = logging.getLogger(__name__)

SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[BOS]")
BOS_TOKEN = "[BOS]"
SENTENCE_DELIMITER = "."


def train_wordpiece_tokenizer(
    texts: Iterable[str], *, vocab_size: int = 2000, min_frequency: int = 1
) -> PreTrainedTokenizerFast:
    """Build an uncased BERT-style WordPiece tokenizer for ``texts``, deterministically.

    The vocabulary is the special tokens ([PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3, [MASK]=4, [BOS]=5),
    then every character seen (word-initial and ``##`` continuation; digits and "." always), then whole words
    by descending frequency (ties alphabetical) up to ``vocab_size``; rarer words split into
    characters. [SEP] is also the end-of-sequence token. The ``tokenizers`` WordPiece trainer is
    not used because it breaks ties between equal-count merges differently on every run, so the
    same corpus gave different vocabularies (and models that could not be reproduced).
    """
    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    chars = sorted({c for word in counts for c in word} | set(string.digits) | {SENTENCE_DELIMITER})
    pieces = [*SPECIAL_TOKENS, *chars, *(f"##{c}" for c in chars)]
    if vocab_size < len(pieces):
        raise ValueError(f"vocab_size={vocab_size} cannot hold the {len(pieces)} special tokens and characters")
    words = sorted((w for w, n in counts.items() if n >= min_frequency and len(w) > 1), key=lambda w: (-counts[w], w))
    pieces += words[: vocab_size - len(pieces)]
    tok = Tokenizer(models.WordPiece(vocab={p: i for i, p in enumerate(pieces)}, unk_token="[UNK]"))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.WordPiece(prefix="##")
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        bos_token=BOS_TOKEN,
        eos_token="[SEP]",
    )
    logger.info("built a WordPiece tokenizer with %d pieces (%d distinct words seen)", len(fast), len(counts))
    return fast


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerBase:
    """Load a saved tokenizer (a directory, or a hub name when online) with MELP's special tokens set.

    A tokenizer without a [BOS] token (e.g. a stock BERT's) gets one appended to its vocabulary;
    the model built from it resizes its embeddings to match (spec §2.1). ``eos`` is [SEP].
    """
    local = Path(path)
    if (local / "tokenizer.json").is_file():  # a saved fast tokenizer; skips reading a MELP config.json
        tok = PreTrainedTokenizerFast.from_pretrained(str(local))
    else:
        tok = AutoTokenizer.from_pretrained(str(path))
    if tok.sep_token is None or tok.cls_token is None or tok.pad_token is None:
        raise ValueError(f"tokenizer at {path} lacks [CLS], [SEP] or [PAD]; a BERT-style tokenizer is expected")
    if tok.convert_tokens_to_ids(BOS_TOKEN) == tok.unk_token_id:
        tok.add_special_tokens({"bos_token": BOS_TOKEN})
    tok.bos_token = BOS_TOKEN
    tok.eos_token = tok.sep_token
    if tok.convert_tokens_to_ids(SENTENCE_DELIMITER) == tok.unk_token_id:
        raise ValueError(f"tokenizer at {path} has no {SENTENCE_DELIMITER!r} token (needed to split sentences)")
    return tok


def build_bert_config(
    *,
    vocab_size: int,
    hidden_size: int = 256,
    num_layers: int = 4,
    num_heads: int = 4,
    intermediate_size: int = 1024,
    max_position_embeddings: int = 256,
    pad_token_id: int = 0,
) -> BertConfig:
    """A ``BertConfig`` for a small from-scratch text encoder (defaults: the CPU ``tiny`` text model)."""
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=max_position_embeddings,
        pad_token_id=pad_token_id,
    )


def build_text_model_dir(
    out_dir: str | Path, *, tokenizer: PreTrainedTokenizerBase, config: BertConfig, seed: int = 0
) -> Path:
    """Write a randomly initialised BERT masked LM + ``tokenizer`` to ``out_dir`` (a stage-1 starting point).

    The directory loads with ``transformers.AutoModel`` and with ``MELP.from_text_model``.
    """
    if config.vocab_size < len(tokenizer):
        raise ValueError(f"BertConfig.vocab_size={config.vocab_size} is smaller than the tokenizer ({len(tokenizer)})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = BertForMaskedLM(config)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def split_sentences(token_ids: list[int], *, delimiter_id: int, special_ids: set[int]) -> list[list[int]]:
    """Cut a tokenised report into the sentences the text encoder embeds (``TextEncoder.sentence_embeddings``).

    A sentence ends with (and includes) the delimiter; text after the last delimiter is one more
    sentence; special tokens belong to no sentence. Sentences left with no token are dropped, as the
    model masks them, so the result matches the model's valid sentences one to one.
    """
    sentences: list[list[int]] = [[]]
    for token in token_ids:
        if token not in special_ids:
            sentences[-1].append(token)
        if token == delimiter_id:
            sentences.append([])
    return [s for s in sentences if s]
