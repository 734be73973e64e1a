"""Dataclass configs of the MELP model (spec §1.1 size table, §1.3 heads, §2.1 text, §2.2 decoder).

Every field has a default, so a YAML file or a dotted override (``model.ecg.size=tiny``) names only
what differs. Size presets fill the ECG tower's shape; explicit fields override the preset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Literal

ECGSize = Literal["micro", "tiny", "small", "base", "large"]

#: The standard lead order of every melp store (``melp.data.leads.STANDARD_LEADS``).
STANDARD_LEAD_ORDER: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")


@dataclass(frozen=True)
class ECGShape:
    """The resolved shape of the ECG tower (see :data:`ECG_PRESETS`)."""

    width: int
    layers: int
    heads: int
    ffn_dim: int
    conv_channels: int
    conv_pos_kernel: int
    conv_pos_groups: int
    conv_kernel: int = 2


#: Shapes per size. ``small`` is the paper's encoder (spec §1.1: 8 × 768, 12 heads, FFN 3072, ≈ 62 M);
#: ``micro`` and ``tiny`` exist for CPU tests and the demo (environment notes §4).
ECG_PRESETS: dict[str, ECGShape] = {
    "micro": ECGShape(
        width=64, layers=2, heads=4, ffn_dim=256, conv_channels=64, conv_pos_kernel=16, conv_pos_groups=4
    ),
    "tiny": ECGShape(
        width=256, layers=4, heads=4, ffn_dim=1024, conv_channels=256, conv_pos_kernel=128, conv_pos_groups=16
    ),
    "small": ECGShape(
        width=768, layers=8, heads=12, ffn_dim=3072, conv_channels=256, conv_pos_kernel=128, conv_pos_groups=16
    ),
    "base": ECGShape(
        width=768, layers=12, heads=12, ffn_dim=3072, conv_channels=256, conv_pos_kernel=128, conv_pos_groups=16
    ),
    "large": ECGShape(
        width=1024, layers=24, heads=16, ffn_dim=4096, conv_channels=256, conv_pos_kernel=128, conv_pos_groups=16
    ),
}


@dataclass
class ECGEncoderConfig:
    """The wav2vec2-style ECG encoder (spec §1.2). ``None`` shape fields take the ``size`` preset.

    Attributes:
        size: preset name; see :data:`ECG_PRESETS`.
        in_leads: number of input leads (12, standard order).
        dropout: residual / input dropout (``dropout`` and ``dropout_input`` of the reference).
        attention_dropout: dropout on attention weights.
        feature_grad_mult: gradient multiplier on the conv feature extractor's output.
        conv_kernel: kernel of the four stride-2 convolutions of the feature extractor (even; the
            paper's 2 in every preset). A larger kernel overlaps neighbouring frames and pads so the
            frames stay where kernel 2 puts them (:class:`~melp.models.ecg_encoder.ConvFeatureExtractor`);
            only kernel 2 can be exported in the reference's format.
        init: initialisation of the transformer layers. ``"default"`` is the reference's (the
            fork of fairseq-signals removed ``init_bert_params``): q/k/v Xavier-uniform with gain
            1/sqrt(2), ``out_proj`` Xavier-uniform with zero bias, FFN PyTorch's default.
            ``"bert"`` is fairseq's ``init_bert_params``: every Linear N(0, 0.02), biases 0.
    """

    size: ECGSize = "small"
    width: int | None = None
    layers: int | None = None
    heads: int | None = None
    ffn_dim: int | None = None
    conv_channels: int | None = None
    conv_pos_kernel: int | None = None
    conv_pos_groups: int | None = None
    conv_kernel: int | None = None
    in_leads: int = 12
    dropout: float = 0.1
    attention_dropout: float = 0.1
    feature_grad_mult: float = 0.1
    init: Literal["default", "bert"] = "default"

    def shape(self) -> ECGShape:
        """The preset of ``size`` with every explicitly set field applied."""
        if self.size not in ECG_PRESETS:
            raise ValueError(f"unknown ECG encoder size {self.size!r}; expected one of {sorted(ECG_PRESETS)}")
        preset = ECG_PRESETS[self.size]
        overrides = {k: getattr(self, k) for k in preset.__dataclass_fields__ if getattr(self, k) is not None}
        shape = replace(preset, **overrides)
        if shape.width % shape.heads:
            raise ValueError(f"ECG width {shape.width} is not divisible by its {shape.heads} heads")
        if shape.conv_kernel < 2 or shape.conv_kernel % 2:
            raise ValueError(
                f"conv_kernel must be even and >= 2 (stride 2, symmetric padding), got {shape.conv_kernel}"
            )
        if shape.width % shape.conv_pos_groups:
            raise ValueError(f"ECG width {shape.width} is not divisible by conv_pos_groups={shape.conv_pos_groups}")
        return shape


@dataclass
class TextEncoderConfig:
    """The causal BERT text encoder (spec §2.1).

    Attributes:
        model_path: where the BERT came from (a local directory or hub name); informational once built.
        n_frozen_layers: the first N transformer layers get ``requires_grad=False``.
        max_length: longest accepted token sequence; the appended global [CLS] takes position id
            ``max_length`` whatever the batch's padded length, so embeddings do not depend on padding.
        bert_config: the Hugging Face ``BertConfig`` as a dict (filled by ``MELP.from_text_model``).
        pad_token_id, bos_token_id, eos_token_id, cls_token_id: ids from the tokenizer.
        sentence_delimiter_id: id of "." in the tokenizer (sentence boundaries, spec §2.1 step 4).
        special_token_ids: ids excluded from sentence means (``tokenizer.all_special_ids``).
        pooling: the global text state: ``cls``, the appended [CLS] token's last-layer state (the
            paper's), or ``mean``, the mean last-layer state of the report's word tokens (special
            tokens left out, as in the sentence means). An MLM-pretrained BERT never saw a [CLS]
            at the end, so at the start of stage 2 that state is nearly the same for every report
            (mean cosine 0.9995 after the demo's stage 1); the mean differs from report to report.
        locked: freeze the whole text encoder (BERT, embeddings and both projections), as LiT
            (Zhai et al., 2022) locks a pretrained tower: stage 2 then aligns the ECG side, the
            decoder and the temperature with the text space of stage 1 instead of reshaping it. A
            locked encoder stays in eval mode, so its dropout is off and a report always gets the
            same states.
    """

    model_path: str = ""
    n_frozen_layers: int = 6
    max_length: int = 128
    bert_config: dict[str, Any] = field(default_factory=dict)
    pad_token_id: int = 0
    bos_token_id: int = -1
    eos_token_id: int = -1
    cls_token_id: int = -1
    sentence_delimiter_id: int = -1
    special_token_ids: list[int] = field(default_factory=list)
    pooling: Literal["cls", "mean"] = "cls"
    locked: bool = False


@dataclass
class DecoderConfig:
    """The CoCa multimodal caption decoder (spec §2.2): pre-LN, causal self-attn + cross-attn per layer."""

    layers: int = 6
    width: int = 768
    heads: int = 8
    mlp_ratio: float = 4.0


@dataclass
class MELPConfig:
    """The whole model (spec §0, §1.3, Appendix A).

    Attributes:
        n_beat_queries: beat-level pooler queries N_q (12 as in the README run, spec §1.3).
        n_caption_queries: caption pooler queries (ECG tokens the decoder cross-attends to).
        embed_dim: shared embedding width (beat, sentence, global latents).
        pooler_heads: heads of both attentional poolers.
        fs, seconds, normalization: the ECG input the model was trained on (for users and evaluation).
        lead_order: the lead order the ECG tower's weights were trained on. Inputs to ``MELP`` are
            always in the standard order (that of every store); ``encode_ecg`` permutes them into this
            order first, so no caller has to. The released weights read MIMIC-IV-ECG's order (aVF
            before aVL).
        ecg_only: the model has the ECG tower and its heads only (no text encoder, caption decoder,
            tokenizer or logit scale), e.g. the authors' released encoder; see ``MELP.has_text``.
        mask_value: how an absent lead is shown to the model: ``"zero"`` (the reference: 0 after the
            min-max scaling, i.e. the record's minimum) or ``"baseline"`` (0 mV before scaling).
            Pretraining's random lead masking writes it, and inference fills missing leads with it.
        logit_scale_init, logit_scale_max: CLIP temperature, stored as a log; clamped to [0, max].
    """

    ecg: ECGEncoderConfig = field(default_factory=ECGEncoderConfig)
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    n_beat_queries: int = 12
    n_caption_queries: int = 128
    embed_dim: int = 256
    pooler_heads: int = 8
    fs: int = 500
    seconds: float = 10.0
    normalization: Literal["minmax", "zscore", "none"] = "minmax"
    mask_value: Literal["zero", "baseline"] = "zero"
    lead_order: list[str] = field(default_factory=lambda: list(STANDARD_LEAD_ORDER))
    ecg_only: bool = False
    logit_scale_init: float = math.log(1 / 0.07)
    logit_scale_max: float = math.log(100.0)

    @classmethod
    def preset(cls, size: ECGSize) -> MELPConfig:
        """A consistent config for ``size``: micro/tiny get a small decoder, larger sizes the paper's."""
        decoders = {
            "micro": DecoderConfig(layers=1, width=64, heads=4),
            "tiny": DecoderConfig(layers=2, width=256, heads=8),
        }
        return cls(
            ecg=ECGEncoderConfig(size=size),
            decoder=decoders.get(size, DecoderConfig()),
            n_caption_queries=16 if size == "micro" else 128,
            embed_dim=64 if size == "micro" else 256,
            pooler_heads=4 if size == "micro" else 8,
        )
