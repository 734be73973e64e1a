"""The MELP model (spec §0, Appendix A): ECG tower + heads, causal text encoder, caption decoder.

Token level: caption pooler → ECG tokens → caption decoder. Beat level: beat pooler → LayerNorm →
projection → beat embeddings. Rhythm level: mean of the beat embeddings, L2-normalised. Weights
are saved as safetensors next to a JSON config and the tokenizer; nothing is pickled.

Dims: B batch, C leads, T samples, N frames, Q queries, L tokens, S sentences, E embed_dim, V vocabulary.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import BertModel, PreTrainedTokenizerBase

from melp.config import config_from_dict, config_to_dict
from melp.models.config import STANDARD_LEAD_ORDER, MELPConfig
from melp.models.decoder import CaptionDecoder
from melp.models.ecg_encoder import ECGEncoder
from melp.models.generation import GenerationConfig, generate
from melp.models.layers import AttentionalPooler, LayerNormFp32
from melp.models.text_encoder import TextEncoder
from melp.models.tokenizer import SENTENCE_DELIMITER, load_tokenizer

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT_VERSION = 1


class MELP(nn.Module):
    """Multi-scale ECG-language model. Build with :meth:`from_text_model` or :meth:`from_pretrained`.

    With ``config.ecg_only`` (e.g. the authors' released encoder, :meth:`from_reference`) only the ECG
    tower and its heads exist: ``text``, ``decoder``, ``tokenizer`` and ``logit_scale`` are None,
    :meth:`encode_ecg` works, and :meth:`encode_text`, :meth:`generate` and :meth:`forward` raise
    ValueError.
    """

    def __init__(
        self, *, config: MELPConfig, bert: BertModel | None = None, tokenizer: PreTrainedTokenizerBase | None = None
    ) -> None:
        super().__init__()
        if sorted(config.lead_order) != sorted(STANDARD_LEAD_ORDER):
            raise ValueError(f"lead_order must list the 12 standard leads once each, got {config.lead_order}")
        if config.ecg_only and (bert is not None or tokenizer is not None):
            raise ValueError("an ECG-only model (config.ecg_only) takes no text model or tokenizer")
        self.config = config
        self.tokenizer = None if config.ecg_only else tokenizer
        order = [STANDARD_LEAD_ORDER.index(lead) for lead in config.lead_order]
        self._lead_index = None if order == sorted(order) else order
        self.ecg_encoder = ECGEncoder(config=config.ecg)
        width, embed = self.ecg_encoder.width, config.embed_dim
        self.beat_pooler = AttentionalPooler(
            d_model=embed, context_dim=width, n_queries=config.n_beat_queries, heads=config.pooler_heads
        )
        self.beat_norm = LayerNormFp32(embed)
        self.beat_proj = nn.Parameter(torch.randn(embed, embed) * width**-0.5)
        self.caption_pooler = AttentionalPooler(
            d_model=config.decoder.width,
            context_dim=width,
            n_queries=config.n_caption_queries,
            heads=config.pooler_heads,
        )
        self.caption_norm = LayerNormFp32(config.decoder.width)
        self.text: TextEncoder | None = None
        self.decoder: CaptionDecoder | None = None
        self.logit_scale: nn.Parameter | None = None
        if not config.ecg_only:
            self.text = TextEncoder(config=config.text, embed_dim=embed, bert=bert)
            vocab = self.text.bert.config.vocab_size
            self.decoder = CaptionDecoder(config=config.decoder, input_dim=self.text.hidden_size, vocab_size=vocab)
            self.logit_scale = nn.Parameter(torch.tensor(config.logit_scale_init))

    @property
    def has_text(self) -> bool:
        """Whether the model has a text tower (text encoder, caption decoder, tokenizer ids)."""
        return self.text is not None

    def text_tower(self, what: str) -> tuple[TextEncoder, CaptionDecoder]:
        """The text encoder and caption decoder; ValueError naming ``what`` for an ECG-only model."""
        if self.text is None or self.decoder is None:
            raise ValueError(
                f"{what} needs a text tower, and this model has none (ECG tower only, e.g. converted from the "
                "reference's released encoder); attach one by pretraining with --init-ecg MODEL --text-model DIR"
            )
        return self.text, self.decoder

    def encode_ecg(self, ecg: torch.Tensor, *, with_attention: bool = True) -> dict[str, torch.Tensor]:
        """Encode ECGs (B, 12, T), leads in the standard order (permuted here to ``config.lead_order``).

        Returns:
            ``ecg_latent`` (B, E) L2-normalised zero-shot embedding; ``probe_emb`` (B, E) linear-probe
            embedding (mean of normalised beat queries, before the projection, not normalised);
            ``beat_embs`` (B, Q, E); ``ecg_tokens`` (B, Q_cap, W) caption memory; ``ecg_frames``
            (B, N, D) encoder output; ``beat_attn`` (B, Q, N) head-averaged beat-query attention
            over frames (only when ``with_attention``).
        """
        if self._lead_index is not None:
            self.ecg_encoder.check_input(ecg)
            ecg = ecg[:, self._lead_index]  # standard order → the weights' order (config.lead_order)
        frames = self.ecg_encoder(ecg)  # (B, N, D)
        beats, attn = self.beat_pooler(frames, return_weights=with_attention)  # (B, Q, E), (B, Q, N)
        beats = self.beat_norm(beats)
        beat_embs = beats @ self.beat_proj.to(beats.dtype)  # (B, Q, E)
        caption, _ = self.caption_pooler(frames)  # (B, Q_cap, W)
        out = {
            "ecg_latent": F.normalize(beat_embs.float().mean(dim=1), dim=-1),
            "probe_emb": beats.float().mean(dim=1),
            "beat_embs": beat_embs,
            "ecg_tokens": self.caption_norm(caption),
            "ecg_frames": frames,
        }
        if attn is not None:
            out["beat_attn"] = attn
        return out

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Encode collated reports (B, L); see :meth:`TextEncoder.forward` for the outputs."""
        text, _ = self.text_tower("encode_text")
        return text(input_ids, attention_mask)

    def forward(
        self, *, ecg: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """One training forward pass: everything the three losses need.

        Returns:
            ``ecg_latent``, ``text_latent`` (B, E); ``beat_embs`` (B, Q, E); ``sentence_embs`` (B, S, E);
            ``sentence_mask`` (B, S); ``caption_logits`` (B, L - 1, V) predicting ``caption_labels``
            (B, L - 1) = ``input_ids[:, 1:]`` (pads are ``text.pad_token_id``); ``logit_scale``, the
            CLIP temperature parameter in log space (a scalar; the multiplier is its exponential).
        """
        _, decoder = self.text_tower("the training forward pass")
        assert self.logit_scale is not None
        if ecg.shape[0] != input_ids.shape[0]:
            raise ValueError(f"batch sizes differ: {ecg.shape[0]} ECGs, {input_ids.shape[0]} reports")
        e = self.encode_ecg(ecg, with_attention=False)
        t = self.encode_text(input_ids, attention_mask)
        logits = decoder(t["token_embs"][:, :-1], e["ecg_tokens"])  # (B, L - 1, V)
        return {
            "ecg_latent": e["ecg_latent"],
            "text_latent": t["text_latent"],
            "beat_embs": e["beat_embs"],
            "sentence_embs": t["sentence_embs"],
            "sentence_mask": t["sentence_mask"],
            "caption_logits": logits,
            "caption_labels": input_ids[:, 1:].long(),
            "logit_scale": self.logit_scale,
        }

    @torch.no_grad()
    def clamp_logit_scale_(self) -> None:
        """Clamp the log logit scale to [0, ``logit_scale_max``] (call after every optimiser step)."""
        if self.logit_scale is not None:
            self.logit_scale.clamp_(0.0, self.config.logit_scale_max)

    def generate(
        self,
        ecg: torch.Tensor,
        *,
        method: Literal["beam", "greedy", "top_k", "top_p"] = "beam",
        max_length: int = 64,
        min_length: int = 5,
        num_beams: int = 6,
        top_k: int = 10,
        top_p: float = 0.9,
        temperature: float = 1.0,
        length_penalty: float = 1.0,
        use_cache: bool = True,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Generate reports for ECGs (B, 12, T); see :mod:`melp.models.generation`.

        Returns:
            Token ids (B, ≤ max_length): ``[BOS] w1 … [SEP] [PAD] …``, the collator's layout.
        """
        self.text_tower("generate")
        cfg = GenerationConfig(
            method=method,
            max_length=max_length,
            min_length=min_length,
            num_beams=num_beams,
            top_k=top_k,
            top_p=top_p,
            temperature=temperature,
            length_penalty=length_penalty,
            use_cache=use_cache,
        )
        return generate(self, ecg, config=cfg, generator=generator)

    @classmethod
    def from_text_model(
        cls,
        *,
        config: MELPConfig,
        text_model_dir: str | Path,
        tokenizer: PreTrainedTokenizerBase | None = None,
    ) -> MELP:
        """A new MELP around a pretrained BERT (a directory, or a hub name when online).

        The BERT runs causally (``is_decoder=True``) without its MLM head; token ids come from the
        tokenizer (loaded from the same place unless given), and the embeddings grow if the
        tokenizer gained a [BOS] token.
        """
        tok = tokenizer if tokenizer is not None else load_tokenizer(text_model_dir)
        bert = _load_causal_bert(text_model_dir)
        if len(tok) > bert.config.vocab_size:
            bert.resize_token_embeddings(len(tok))
        text = replace(
            config.text,
            model_path=str(text_model_dir),
            bert_config=json.loads(bert.config.to_json_string(use_diff=False)),
            pad_token_id=_token_id(tok, tok.pad_token),
            bos_token_id=_token_id(tok, tok.bos_token),
            eos_token_id=_token_id(tok, tok.sep_token),
            cls_token_id=_token_id(tok, tok.cls_token),
            sentence_delimiter_id=_token_id(tok, SENTENCE_DELIMITER),
            special_token_ids=sorted(int(i) for i in tok.all_special_ids),
        )
        return cls(config=replace(config, text=text, ecg_only=False), bert=bert, tokenizer=tok)

    @classmethod
    def from_reference(cls, source: str | Path, *, dtype: torch.dtype = torch.float32) -> MELP:
        """The authors' released encoder (or a reference checkpoint) as an ECG-only MELP.

        ``source``: an HF-style directory (``config.json`` + ``model.safetensors``, e.g.
        ``fuyingw/MELP_Encoder``), a bare ``.safetensors`` or a Lightning ``.ckpt`` (read with
        ``torch.load(weights_only=True)`` only). See :mod:`melp.models.reference`.
        """
        from melp.models.reference import load_reference

        return load_reference(source, dtype=dtype)

    @torch.no_grad()
    def load_ecg_side_(self, source: MELP) -> None:
        """Copy ``source``'s ECG tower and heads (every weight outside the text tower) into this model.

        Raises:
            ValueError: the two ECG sides differ in a key or a shape (build this model's config with
                :func:`ecg_side_config` of the source's).
        """
        mine = {k: v for k, v in self.state_dict().items() if not k.startswith(TEXT_TOWER_PREFIXES)}
        theirs = {k: v for k, v in source.state_dict().items() if not k.startswith(TEXT_TOWER_PREFIXES)}
        if sorted(mine) != sorted(theirs):
            raise ValueError(f"ECG sides differ in keys: {sorted(set(mine) ^ set(theirs))[:5]}")
        for key, value in theirs.items():
            if mine[key].shape != value.shape:
                raise ValueError(f"{key}: shape {tuple(value.shape)} in the source, {tuple(mine[key].shape)} here")
            mine[key].copy_(value)

    def save_pretrained(self, directory: str | Path, *, tokenizer: PreTrainedTokenizerBase | None = None) -> Path:
        """Write ``config.json``, ``model.safetensors`` and the tokenizer files to ``directory``."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        meta = {"model_type": "melp", "format_version": FORMAT_VERSION, "config": config_to_dict(self.config)}
        (out / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(out / WEIGHTS_FILE), metadata={"format": "pt"})
        tok = tokenizer if tokenizer is not None else self.tokenizer
        if tok is not None and not self.config.ecg_only:
            tok.save_pretrained(out)
        elif not self.config.ecg_only:
            logger.warning("saving %s without a tokenizer; pass tokenizer= to make it self-contained", out)
        return out

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, map_location: str | torch.device = "cpu") -> MELP:
        """Load a model written by :meth:`save_pretrained` (in eval mode; tokenizer attached if saved)."""
        path = Path(directory)
        if not (path / CONFIG_FILE).is_file() or not (path / WEIGHTS_FILE).is_file():
            raise FileNotFoundError(f"{path} is not a saved MELP model (expected {CONFIG_FILE} and {WEIGHTS_FILE})")
        meta: dict[str, Any] = json.loads((path / CONFIG_FILE).read_text())
        if meta.get("model_type") != "melp":
            raise ValueError(f"{path / CONFIG_FILE} is not a MELP config (model_type={meta.get('model_type')!r})")
        config = config_from_dict(MELPConfig, meta["config"])
        has_tokenizer = (path / "tokenizer_config.json").is_file() and not config.ecg_only
        tokenizer = load_tokenizer(path) if has_tokenizer else None
        model = cls(config=config, tokenizer=tokenizer)
        model.load_state_dict(load_file(str(path / WEIGHTS_FILE), device=str(map_location)))
        return model.eval()


#: State-dict prefixes of the text tower (absent from an ECG-only model).
TEXT_TOWER_PREFIXES = ("text.", "decoder.", "logit_scale")

#: MELPConfig fields that belong to the ECG side (tower, heads, expected input).
ECG_SIDE_FIELDS = (
    "ecg", "n_beat_queries", "n_caption_queries", "embed_dim", "pooler_heads", "fs", "seconds", "normalization",
    "lead_order",
)  # fmt: skip


def ecg_side_config(config: MELPConfig, ecg_side: MELPConfig) -> MELPConfig:
    """``config`` with the ECG side (tower shape, heads, input format, caption width) of ``ecg_side``.

    Used to attach a text tower to a converted encoder: the caption pooler's width is the caption
    decoder's, so ``decoder.width`` comes from ``ecg_side`` too.
    """
    fields = {name: getattr(ecg_side, name) for name in ECG_SIDE_FIELDS}
    return replace(config, **fields, decoder=replace(config.decoder, width=ecg_side.decoder.width), ecg_only=False)


def _load_causal_bert(path: str | Path) -> BertModel:
    """``BertModel`` (no pooler, no MLM head) with causal attention; logs only keys that matter."""
    # transformers reports the MLM head it skips as a warning, and with that logger raised it also
    # checks a tensor-parallel plan and lists every layer as "not sharded"
    hf_loggers = [
        logging.getLogger(f"transformers.{name}") for name in ("modeling_utils", "distributed.tensor_parallel")
    ]
    levels = [hf_logger.level for hf_logger in hf_loggers]
    for hf_logger in hf_loggers:
        hf_logger.setLevel(logging.ERROR)
    try:
        loaded: Any = BertModel.from_pretrained(
            str(path), is_decoder=True, add_pooling_layer=False, output_loading_info=True
        )
    finally:
        for hf_logger, level in zip(hf_loggers, levels):
            hf_logger.setLevel(level)
    bert, info = loaded
    unexpected = [k for k in info.get("unexpected_keys", []) if not k.startswith(("cls.", "pooler.", "bert.pooler."))]
    for kind, keys in (("missing", info.get("missing_keys", [])), ("unexpected", unexpected)):
        if keys:
            logger.warning("text model %s: %d %s keys (e.g. %s)", path, len(keys), kind, sorted(keys)[:3])
    return bert


def _token_id(tokenizer: PreTrainedTokenizerBase, token: Any) -> int:
    """The id of ``token``, which must be a single known token."""
    index = tokenizer.convert_tokens_to_ids(token)
    if not isinstance(index, int) or index == tokenizer.unk_token_id:
        raise ValueError(f"tokenizer has no single token {token!r}")
    return index
