"""The authors' parameter naming ↔ melp's: load the released MELP encoder exactly, and export back.

The reference is HKU-MedAI/MELP ``ECGFMModel`` on fuying-wang/fairseq-signals ``Wav2Vec2CMSCModel``.
The released ``fuyingw/MELP_Encoder`` checkpoint is ``config.json`` (``MELPEncoderConfig`` names) +
``model.safetensors`` whose keys are ``ecg_encoder.`` + ``ECGFMModel.state_dict()`` keys (ECG tower
only, bf16). Every source key is either mapped (:func:`reference_layout`) or dropped for a reason
(:data:`DROPPED`); an unknown key, a missing key or a shape mismatch is an error naming the key.
``tests/test_reference.py`` proves the converted model reproduces the reference's own outputs.

The converted model is ECG-only (``config.ecg_only``) and records the reference's input:
leads in MIMIC-IV-ECG order (:data:`REFERENCE_LEAD_ORDER`), 500 Hz, 10 s, one min-max per record
over all leads (``normalization="minmax"``); ``build_transform(lead_order=...)`` applies them.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from melp.models.config import DecoderConfig, ECGEncoderConfig, MELPConfig
from melp.models.melp import MELP

logger = logging.getLogger(__name__)

PREFIX = "ecg_encoder."
W2V = PREFIX + "ecg_encoder."
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"

#: Lead order of the reference's input (MIMIC-IV-ECG: aVF before aVL).
REFERENCE_LEAD_ORDER = ["I", "II", "III", "aVR", "aVF", "aVL", "V1", "V2", "V3", "V4", "V5", "V6"]

#: ``ECGFMModel`` size table (``model_size`` → width, heads, layers, FFN).
REFERENCE_SIZES = {"small": (768, 12, 8, 3072), "base": (768, 12, 12, 3072), "large": (1024, 16, 24, 4096)}

#: Source keys (by prefix) that have no counterpart in melp, and why each is dropped.
DROPPED: dict[str, str] = {
    W2V + "mask_emb": "wav2vec2 mask embedding; MELP calls the encoder with mask=False",
    W2V + "quantizer.": "wav2vec2 Gumbel quantiser of the pretraining targets; never read with features_only=True",
    W2V + "input_quantizer.": "wav2vec2 input quantiser (quantize_input); never read by MELP",
    W2V + "project_q.": "wav2vec2 target projection; pretraining only",
    W2V + "project_inp.": "wav2vec2 input-quantiser projection; pretraining only",
    W2V + "final_proj.": "wav2vec2 contrastive-head projection; pretraining only",
    W2V + "target_glu.": "wav2vec2 target GLU; pretraining only",
    PREFIX + "logit_scale": "ECGFMModel's CMSC temperature (ECG-only pretraining), not MELP's CLIP scale",
    PREFIX + "bn.": "ECGFMModel's unused BatchNorm (a commented-out Barlow-Twins loss)",
    PREFIX + "head.": "ECGFMModel's non-attentional head; empty with attentional pooling",
    "lm_model.": "the reference's text encoder: melp converts the ECG tower only (attach one with --text-model)",
    "proj_t.": "the reference's text projection: ECG tower only",
    "sent_proj.": "the reference's sentence projection: ECG tower only",
    "text_decoder.": "the reference's caption decoder: ECG tower only",
    "logit_scale": "the reference's CLIP temperature: ECG tower only",
}


class ReferenceError(ValueError):
    """A reference checkpoint that cannot be converted exactly (the message names the key or file)."""


@dataclass(frozen=True)
class Group:
    """Reference keys ↔ melp keys, equal chunks of one concatenation along dim 0 (1:1, n:1 or 1:n)."""

    reference: tuple[str, ...]
    melp: tuple[str, ...]


def _pooler_groups(ref: str, ours: str, *, same_dims: bool) -> list[Group]:
    """open_clip's AttentionalPooler (``nn.MultiheadAttention``) ↔ :class:`melp.models.layers.AttentionalPooler`."""
    qkv_w = tuple(f"{ours}.{p}_proj.weight" for p in "qkv")
    groups = [
        Group((f"{ref}.query",), (f"{ours}.query",)),
        Group((f"{ref}.attn.in_proj_bias",), tuple(f"{ours}.{p}_proj.bias" for p in "qkv")),
        Group((f"{ref}.attn.out_proj.weight",), (f"{ours}.out_proj.weight",)),
        Group((f"{ref}.attn.out_proj.bias",), (f"{ours}.out_proj.bias",)),
    ]
    if same_dims:  # nn.MultiheadAttention packs q/k/v when kdim == vdim == embed_dim
        groups.append(Group((f"{ref}.attn.in_proj_weight",), qkv_w))
    else:
        groups += [Group((f"{ref}.attn.{p}_proj_weight",), (w,)) for p, w in zip("qkv", qkv_w)]
    for norm in ("ln_q", "ln_k"):
        groups += [Group((f"{ref}.{norm}.{t}",), (f"{ours}.{norm}.{t}",)) for t in ("weight", "bias")]
    return groups


def reference_layout(config: MELPConfig) -> list[Group]:
    """Every inference tensor of the reference for a melp ``config``, paired with melp's."""
    shape = config.ecg.shape()
    wb = ("weight", "bias")
    groups = [Group((f"{W2V}feature_extractor.conv_layers.{i}.0.weight",), (f"ecg_encoder.feature_extractor.convs.{i}.weight",)) for i in range(4)]  # fmt: skip
    groups += [Group((f"{W2V}feature_extractor.conv_layers.0.2.{t}",), (f"ecg_encoder.feature_extractor.norm.{t}",)) for t in wb]  # fmt: skip
    groups += [Group((f"{W2V}layer_norm.{t}",), (f"ecg_encoder.layer_norm.{t}",)) for t in wb]
    groups += [Group((f"{W2V}post_extract_proj.{t}",), (f"ecg_encoder.post_extract_proj.{t}",)) for t in wb]
    pos_ref, pos = f"{W2V}conv_pos.pos_conv.0.", "ecg_encoder.pos_conv.conv."
    groups.append(Group((pos_ref + "bias",), (pos + "bias",)))
    groups += [Group((f"{pos_ref}parametrizations.weight.original{i}",), (f"{pos}parametrizations.weight.original{i}",)) for i in (0, 1)]  # fmt: skip
    groups += [Group((f"{W2V}encoder.layer_norm.{t}",), (f"ecg_encoder.encoder_norm.{t}",)) for t in wb]
    for i in range(shape.layers):
        ref, ours = f"{W2V}encoder.layers.{i}.", f"ecg_encoder.layers.{i}."
        for t in wb:
            groups.append(Group(tuple(f"{ref}self_attn.{p}_proj.{t}" for p in "qkv"), (f"{ours}qkv.{t}",)))
            pairs = (("self_attn.out_proj", "out_proj"), ("self_attn_layer_norm", "attn_norm"), ("fc1", "fc1"), ("fc2", "fc2"), ("final_layer_norm", "ffn_norm"))  # fmt: skip
            groups += [Group((f"{ref}{a}.{t}",), (f"{ours}{b}.{t}",)) for a, b in pairs]
    groups += _pooler_groups(f"{PREFIX}attn_pool_contrast", "beat_pooler", same_dims=config.embed_dim == shape.width)
    groups += [Group((f"{PREFIX}ln_contrast.{t}",), (f"beat_norm.{t}",)) for t in wb]
    groups.append(Group((f"{PREFIX}proj_contrast",), ("beat_proj",)))
    same = config.decoder.width == shape.width
    groups += _pooler_groups(f"{PREFIX}attn_pool_caption", "caption_pooler", same_dims=same)
    groups += [Group((f"{PREFIX}ln_caption.{t}",), (f"caption_norm.{t}",)) for t in wb]
    return groups


def _drop_reason(key: str) -> str | None:
    for prefix, reason in DROPPED.items():
        if key == prefix or (prefix.endswith(".") and key.startswith(prefix)):
            return reason
    return None


def _expected_shapes(config: MELPConfig) -> dict[str, torch.Size]:
    with torch.device("meta"):
        model = MELP(config=config)
    return {k: v.shape for k, v in model.state_dict().items()}


def _ref_shape(group: Group, melp_shapes: dict[str, torch.Size]) -> torch.Size:
    first = melp_shapes[group.melp[0]]
    rows = first[0] * len(group.melp) // len(group.reference) if first else None
    return torch.Size([rows, *first[1:]]) if rows is not None else first


def reference_shapes(config: MELPConfig) -> dict[str, torch.Size]:
    """Shape of every mapped reference key for ``config`` (computed on the meta device, no weights)."""
    melp_shapes = _expected_shapes(config)
    return {key: _ref_shape(g, melp_shapes) for g in reference_layout(config) for key in g.reference}


def convert_state_dict(state: dict[str, torch.Tensor], config: MELPConfig) -> dict[str, torch.Tensor]:
    """Reference state dict (``ecg_encoder.``-prefixed) → melp's ECG-only state dict.

    Raises:
        ReferenceError: an unknown key, a missing key or a wrong shape, named in the message.
    """
    groups = reference_layout(config)
    melp_shapes = _expected_shapes(config)
    mapped = {key for g in groups for key in g.reference}
    dropped: dict[str, int] = {}
    for key in state:
        if key in mapped:
            continue
        reason = _drop_reason(key)
        if reason is None:
            raise ReferenceError(f"unknown key {key!r} in the reference checkpoint: neither mapped nor a known drop")
        dropped[reason] = dropped.get(reason, 0) + 1
    for reason, n in dropped.items():
        logger.info("dropped %d tensor(s): %s", n, reason)
    out: dict[str, torch.Tensor] = {}
    for group in groups:
        missing = [k for k in group.reference if k not in state]
        if missing:
            raise ReferenceError(f"the reference checkpoint lacks {missing[0]!r} (needed for {group.melp[0]})")
        expected = _ref_shape(group, melp_shapes)
        for key in group.reference:
            if state[key].shape != expected:
                raise ReferenceError(
                    f"{key}: shape {tuple(state[key].shape)}, expected {tuple(expected)} for this config"
                )
        whole = (
            torch.cat([state[k] for k in group.reference]) if len(group.reference) > 1 else state[group.reference[0]]
        )
        for key, part in zip(group.melp, whole.chunk(len(group.melp)) if len(group.melp) > 1 else (whole,)):
            out[key] = part.contiguous()
    return out


def export_state_dict(model: MELP) -> dict[str, torch.Tensor]:
    """melp's ECG side → the reference's state dict (``MELPEncoderModel`` keys, every one of them).

    The pretraining-only tensors (quantiser, ``project_q``, ``final_proj``, ``mask_emb``, ``bn``,
    ``logit_scale``) are written freshly initialised (zeros; unit BatchNorm variance; ln(1/0.07)) so
    that a strict ``load_state_dict`` succeeds; they never change the encoder's outputs.
    """
    if model.ecg_encoder.post_extract_proj.in_features == model.ecg_encoder.width:
        raise ReferenceError(
            "ecg_encoder.post_extract_proj: the reference has no such projection when the conv channels equal "
            f"the width ({model.ecg_encoder.width}); this model cannot be written in the reference's naming"
        )
    kernel = model.config.ecg.shape().conv_kernel
    if kernel != 2:
        raise ReferenceError(
            f"model.ecg.conv_kernel={kernel}: the reference's conv feature extractor "
            "has kernel 2 and no padding; this model cannot be written in the reference's format"
        )
    ours = {k: v.detach() for k, v in model.state_dict().items()}
    out: dict[str, torch.Tensor] = {}
    for group in reference_layout(model.config):
        whole = torch.cat([ours[k] for k in group.melp]) if len(group.melp) > 1 else ours[group.melp[0]]
        for key, part in zip(group.reference, whole.chunk(len(group.reference)) if len(group.reference) > 1 else (whole,)):  # fmt: skip
            out[key] = part.contiguous().clone()
    shape = model.config.ecg.shape()
    dtype = next(iter(ours.values())).dtype
    final_dim, groups, latent_vars = 256, 2, 320  # ECGFMModel.init_ecg_encoder / Wav2Vec2Config defaults
    fresh = {
        W2V + "mask_emb": torch.zeros(shape.width),
        W2V + "quantizer.vars": torch.zeros(1, groups * latent_vars, final_dim // groups),
        W2V + "quantizer.weight_proj.weight": torch.zeros(groups * latent_vars, shape.conv_channels),
        W2V + "quantizer.weight_proj.bias": torch.zeros(groups * latent_vars),
        W2V + "project_q.weight": torch.zeros(final_dim, final_dim),
        W2V + "project_q.bias": torch.zeros(final_dim),
        W2V + "final_proj.weight": torch.zeros(final_dim, shape.width),
        W2V + "final_proj.bias": torch.zeros(final_dim),
        PREFIX + "logit_scale": torch.tensor(math.log(1 / 0.07)),
        PREFIX + "bn.running_mean": torch.zeros(768),
        PREFIX + "bn.running_var": torch.ones(768),
    }
    out.update({k: v.to(dtype) for k, v in fresh.items()})
    out[PREFIX + "bn.num_batches_tracked"] = torch.tensor(0, dtype=torch.int64)
    return out


_CONV_LAYERS = re.compile(r"^\s*\[\s*\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\)\s*\]\s*\*\s*(\d+)\s*$")


def _conv_channels(spec: str) -> int:
    """Channels of a ``conv_feature_layers`` string; melp builds exactly ``[(C, 2, 2)] * 4``."""
    match = _CONV_LAYERS.match(spec)
    if match is None or match.group(2, 3, 4) != ("2", "2", "4"):
        raise ReferenceError(f"conv_feature_layers={spec!r}: melp builds only '[(C, 2, 2)] * 4'")
    return int(match.group(1))


def config_from_reference(hf: dict[str, Any]) -> MELPConfig:
    """An ECG-only :class:`MELPConfig` from a ``MELPEncoderConfig`` dict (optionally with ``wav2vec2_config``)."""
    for flag in ("use_attentional_pool_contrast", "use_attentional_pool_caption"):
        if not hf.get(flag, True):
            raise ReferenceError(f"{flag}=false: melp implements the attentional-pooling heads only")
    size = hf.get("model_size", "small")
    if size not in REFERENCE_SIZES:
        raise ReferenceError(f"model_size={size!r}: expected one of {sorted(REFERENCE_SIZES)}")
    width, heads, layers, ffn = REFERENCE_SIZES[size]
    w2v: dict[str, Any] = {
        "encoder_embed_dim": width, "encoder_attention_heads": heads, "encoder_layers": layers,
        "encoder_ffn_embed_dim": ffn, "conv_feature_layers": "[(256, 2, 2)] * 4", "conv_pos": 128,
        "conv_pos_groups": 16, "in_d": hf.get("num_leads", 12), "dropout": 0.1, "attention_dropout": 0.1,
        "activation_dropout": 0.0, "feature_grad_mult": 0.1, "extractor_mode": "default", "layer_norm_first": False,
        "conv_bias": False,
    }  # fmt: skip
    w2v.update(hf.get("wav2vec2_config") or {})
    for key, want in (("extractor_mode", "default"), ("layer_norm_first", False), ("conv_bias", False)):
        if w2v[key] != want:
            raise ReferenceError(f"wav2vec2 {key}={w2v[key]!r}: melp builds {want!r} only (the released model's)")
    if w2v["activation_dropout"]:
        logger.warning("activation_dropout=%s is not modelled by melp (training only)", w2v["activation_dropout"])
    ecg = ECGEncoderConfig(
        size=size, width=w2v["encoder_embed_dim"], layers=w2v["encoder_layers"],
        heads=w2v["encoder_attention_heads"], ffn_dim=w2v["encoder_ffn_embed_dim"],
        conv_channels=_conv_channels(str(w2v["conv_feature_layers"])), conv_pos_kernel=w2v["conv_pos"],
        conv_pos_groups=w2v["conv_pos_groups"], in_leads=w2v["in_d"], dropout=float(w2v["dropout"]),
        attention_dropout=float(w2v["attention_dropout"]), feature_grad_mult=float(w2v["feature_grad_mult"]),
    )  # fmt: skip
    caption = int(hf.get("embed_dim_caption", 768))
    return MELPConfig(
        ecg=ecg, decoder=DecoderConfig(width=caption), n_beat_queries=int(hf.get("n_queries_contrast", 10)),
        n_caption_queries=int(hf.get("n_queries_caption", 128)), embed_dim=int(hf.get("shared_emb_dim", 256)),
        pooler_heads=int(hf.get("attn_pooler_heads", 8)), fs=int(hf.get("sampling_rate", 500)),
        seconds=float(hf.get("seconds", 10.0)), normalization="minmax",
        lead_order=list(hf.get("lead_order", REFERENCE_LEAD_ORDER)), ecg_only=True,
    )  # fmt: skip


def config_from_shapes(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """A ``MELPEncoderConfig`` dict inferred from a state dict with no config beside it.

    Shapes give every width and count; the encoder's heads come from the reference's size table
    (by width and depth) and the poolers' from ``ECGFMModel``'s default (8), which is logged.
    """

    def get(key: str) -> torch.Tensor:
        if key not in state:
            raise ReferenceError(f"the checkpoint lacks {key!r}; is it a MELP reference checkpoint?")
        return state[key]

    width = get(W2V + "post_extract_proj.weight").shape[0]
    layers = len({k.split(".")[4] for k in state if k.startswith(W2V + "encoder.layers.")})
    sizes = [name for name, (w, _, n, _) in REFERENCE_SIZES.items() if (w, n) == (width, layers)]
    if not sizes:
        raise ReferenceError(
            f"a {width}-wide, {layers}-layer encoder is not a reference size; put its config.json beside the weights"
        )
    pos = get(W2V + "conv_pos.pos_conv.0.parametrizations.weight.original1").shape  # (D, D / groups, k)
    w2v = {
        "encoder_embed_dim": width, "encoder_layers": layers,
        "encoder_attention_heads": REFERENCE_SIZES[sizes[0]][1],
        "encoder_ffn_embed_dim": get(W2V + "encoder.layers.0.fc1.weight").shape[0],
        "conv_feature_layers": f"[({get(W2V + 'layer_norm.weight').shape[0]}, 2, 2)] * 4",
        "conv_pos": pos[2], "conv_pos_groups": width // pos[1],
        "in_d": get(W2V + "feature_extractor.conv_layers.0.0.weight").shape[1],
    }  # fmt: skip
    logger.warning("no config.json: shapes inferred from the weights, attn_pooler_heads=8 (ECGFMModel's default)")
    return {
        "model_size": sizes[0], "shared_emb_dim": get(PREFIX + "proj_contrast").shape[0],
        "embed_dim_caption": get(PREFIX + "attn_pool_caption.query").shape[1],
        "n_queries_contrast": get(PREFIX + "attn_pool_contrast.query").shape[0],
        "n_queries_caption": get(PREFIX + "attn_pool_caption.query").shape[0], "attn_pooler_heads": 8,
        "num_leads": w2v["in_d"], "wav2vec2_config": w2v,
    }  # fmt: skip


def _with_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``ECGFMModel.state_dict()`` keys (no outer ``ecg_encoder.``) get the HF model's prefix."""
    if any(k.startswith(W2V) for k in state) or not any(k.startswith("ecg_encoder.feature_extractor.") for k in state):
        return state
    return {PREFIX + k: v for k, v in state.items()}


def read_ckpt(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a Lightning ``.ckpt``, read only through ``torch.load(weights_only=True)``."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ReferenceError(
            f"{path}: refused, torch.load(weights_only=True) cannot read it ({first}); melp never unpickles "
            "arbitrary objects. In the environment that wrote it, save its tensors alone: "
            "torch.save(torch.load(path)['state_dict'], 'state.pt') or safetensors.torch.save_file(...)"
        ) from None
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ReferenceError(f"{path}: not a checkpoint of tensors (expected a dict or a dict with 'state_dict')")
    return dict(state)


def read_reference(source: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """State dict and ``MELPEncoderConfig`` dict of an HF-style directory, a ``.safetensors`` or a ``.ckpt``."""
    path = Path(source)
    if path.is_dir():
        weights, config_path = path / WEIGHTS_FILE, path / CONFIG_FILE
        if not weights.is_file():
            raise ReferenceError(
                f"{path} has no {WEIGHTS_FILE} (expected an HF-style directory like fuyingw/MELP_Encoder)"
            )
    elif path.is_file():
        weights, config_path = path, path.parent / CONFIG_FILE
    else:
        raise ReferenceError(f"{path} does not exist")
    if weights.suffix == ".safetensors":
        state = load_file(str(weights))
    elif weights.suffix in (".ckpt", ".pt", ".pth"):
        state = read_ckpt(weights)
    else:
        raise ReferenceError(f"{weights}: expected a .safetensors or a Lightning .ckpt")
    state = _with_prefix(state)
    hf: dict[str, Any] = json.loads(config_path.read_text()) if config_path.is_file() else {}
    if hf and "model_size" not in hf and "n_queries_contrast" not in hf:
        logger.warning("%s is not a MELPEncoderConfig; ignoring it", config_path)
        hf = {}
    return state, hf or config_from_shapes(state)


def load_reference(source: str | Path, *, dtype: torch.dtype = torch.float32) -> MELP:
    """An ECG-only :class:`MELP` (eval mode) holding a reference checkpoint's weights, cast to ``dtype``."""
    state, hf = read_reference(source)
    config = config_from_reference(hf)
    converted = convert_state_dict(state, config)
    model = MELP(config=config)
    model.load_state_dict({k: v.to(torch.float32) for k, v in converted.items()})
    logger.info("converted %s: %d reference tensors → %d melp tensors", source, len(state), len(converted))
    return model.to(dtype).eval()


def reference_config(model: MELP) -> dict[str, Any]:
    """``config.json`` of an exported model, in ``MELPEncoderConfig`` names (+ the resolved wav2vec2 fields)."""
    c, shape = model.config, model.config.ecg.shape()
    size = next((n for n, s in REFERENCE_SIZES.items() if s == (shape.width, shape.heads, shape.layers, shape.ffn_dim)), "small")  # fmt: skip
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    return {
        "architectures": ["MELPEncoderModel"], "model_type": "melp", "model_size": size,
        "shared_emb_dim": c.embed_dim, "embed_dim_caption": c.decoder.width,
        "use_attentional_pool_contrast": True, "use_attentional_pool_caption": True,
        "n_queries_contrast": c.n_beat_queries, "n_queries_caption": c.n_caption_queries,
        "attn_pooler_heads": c.pooler_heads, "proj": "linear", "drop": 0.0, "proj_bias": False,
        "num_leads": c.ecg.in_leads, "torch_dtype": dtype,
        "wav2vec2_config": {
            "encoder_embed_dim": shape.width, "encoder_layers": shape.layers,
            "encoder_attention_heads": shape.heads, "encoder_ffn_embed_dim": shape.ffn_dim,
            "conv_feature_layers": f"[({shape.conv_channels}, 2, 2)] * 4", "conv_pos": shape.conv_pos_kernel,
            "conv_pos_groups": shape.conv_pos_groups, "in_d": c.ecg.in_leads, "dropout": c.ecg.dropout,
            "attention_dropout": c.ecg.attention_dropout, "feature_grad_mult": c.ecg.feature_grad_mult,
        },
        "lead_order": list(c.lead_order), "sampling_rate": c.fs, "seconds": c.seconds,
    }  # fmt: skip


def export_reference(model: MELP, out: str | Path) -> Path:
    """Write ``model``'s ECG tower as an HF-style reference directory (``config.json`` + ``model.safetensors``)."""
    if model.config.normalization != "minmax":
        raise ReferenceError(
            f"the model reads {model.config.normalization!r}-normalised ECGs; the reference scales by min-max"
        )
    if list(model.config.lead_order) != REFERENCE_LEAD_ORDER:
        logger.warning(
            "the model reads leads in %s; the authors' loaders feed MIMIC order %s (lead_order is recorded in config.json)",
            model.config.lead_order, REFERENCE_LEAD_ORDER,
        )  # fmt: skip
    state = export_state_dict(model)
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CONFIG_FILE).write_text(json.dumps(reference_config(model), indent=2) + "\n")
    save_file(state, str(directory / WEIGHTS_FILE), metadata={"format": "pt"})
    return directory
