"""MELP model: shapes at every size, parameter counts, gradients, causality, save/load (spec §1–2)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from melp.data.collate import ECGReportCollator
from melp.models import MELP, MELPConfig, build_ecg_encoder, train_wordpiece_tokenizer
from melp.models.config import ECG_PRESETS, ECGEncoderConfig
from melp.models.ecg_encoder import EncoderLayer
from melp.models.layers import AttentionalPooler, attention
from melp.models.tokenizer import build_bert_config, build_text_model_dir

REPORTS = [
    "sinus rhythm. normal ecg.",
    "atrial fibrillation with rapid ventricular response. left axis deviation",
    "sinus bradycardia. st depression in leads v5 and v6. t wave inversion.",
    "sinus tachycardia. left ventricular hypertrophy. borderline ecg",
    "first degree av block. right bundle branch block.",
    "premature ventricular contractions. otherwise normal ecg.",
    "atrial flutter with variable block. low qrs voltages",
    "sinus arrhythmia. prolonged qt interval. abnormal ecg.",
] * 4


def build_micro_model(tmp: Path, *, size: str = "micro", hidden: int = 64, layers: int = 2, frozen: int = 1) -> MELP:
    """A MELP around a random BERT written to ``tmp`` (no download), tokenizer trained on REPORTS."""
    tok = train_wordpiece_tokenizer(REPORTS, vocab_size=300)
    bert_cfg = build_bert_config(
        vocab_size=len(tok), hidden_size=hidden, num_layers=layers, num_heads=2, intermediate_size=2 * hidden
    )
    build_text_model_dir(tmp / "text", tokenizer=tok, config=bert_cfg)
    config = MELPConfig.preset(size)  # type: ignore[arg-type]
    config.text.n_frozen_layers = frozen
    config.text.max_length = 64
    torch.manual_seed(0)
    return MELP.from_text_model(config=config, text_model_dir=tmp / "text")


def batch_for(model: MELP, n: int = 4, samples: int = 400, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    items = [{"ecg": torch.rand(12, samples, generator=g), "report": REPORTS[i], "index": i} for i in range(n)]
    assert model.tokenizer is not None
    return ECGReportCollator(model.tokenizer, max_length=model.config.text.max_length)(items)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> MELP:
    return build_micro_model(tmp_path_factory.mktemp("melp"))


@pytest.mark.parametrize("size", sorted(ECG_PRESETS))
def test_ecg_encoder_shapes_every_size(size: str) -> None:
    shape = ECG_PRESETS[size]
    with torch.device("meta"):
        enc = build_ecg_encoder(size)
        out = enc(torch.empty(2, 12, 5000))
    assert out.shape == (2, 312, shape.width)
    assert len(enc.layers) == shape.layers


def test_small_ecg_tower_has_62m_parameters() -> None:
    with torch.device("meta"):
        n = sum(p.numel() for p in build_ecg_encoder("small").parameters())
    assert abs(n - 62e6) / 62e6 < 0.03, n


@pytest.mark.parametrize("samples", [1000, 5000, 2500, 16])
def test_ecg_encoder_frames_and_tail(samples: int) -> None:
    """N = T // 16 frames; as in the reference, samples past the last whole frame still enter the
    first block's GroupNorm statistics (over its T // 2 steps), so they change the frames."""
    torch.manual_seed(0)
    enc = build_ecg_encoder("micro").eval()
    x = torch.randn(2, 12, samples + 7)
    out = enc(x)
    assert out.shape == (2, samples // 16, 64)
    y = x.clone()
    y[..., (samples // 16) * 16 : -1] = 5.0  # the last sample of an odd length is dropped by the first conv
    assert not torch.allclose(enc(y), out)
    z = x.clone()
    z[..., -1] = 5.0
    torch.testing.assert_close(enc(z), out, rtol=0, atol=0)


@pytest.mark.parametrize(("kernel", "first", "last"), [(2, 0, 15), (4, -15, 30), (6, -30, 45)])
def test_conv_kernel_widens_the_receptive_field_around_the_same_frames(kernel: int, first: int, last: int) -> None:
    """Frame j of kernel k sees samples 16 j − 7.5 (k − 2) … 16 j + 15 + 7.5 (k − 2): 1 + 15 (k − 1)
    samples centred where kernel 2 centres the frame, and the frame count stays T // 16."""
    from melp.models.ecg_encoder import ConvFeatureExtractor

    torch.manual_seed(0)
    conv = ConvFeatureExtractor(in_channels=12, channels=8, kernel=kernel)
    for samples in (1000, 1001, 5000, 16):
        assert conv(torch.randn(1, 12, samples)).shape == (1, 8, samples // 16)
    x = torch.randn(1, 12, 320, requires_grad=True)
    j, y = 10, x
    for block in conv.convs:  # the geometry alone: the first block's GroupNorm couples every step
        y = block(y)
    y[0, :, j].sum().backward()
    assert x.grad is not None
    seen = torch.nonzero(x.grad[0].abs().sum(0)).flatten()
    assert (int(seen.min()), int(seen.max())) == (16 * j + first, 16 * j + last)
    assert len(seen) == 1 + 15 * (kernel - 1)


def test_conv_kernel_must_be_even() -> None:
    with pytest.raises(ValueError, match="conv_kernel must be even"):
        ECGEncoderConfig(size="micro", conv_kernel=3).shape()
    assert ECGEncoderConfig(size="small").shape().conv_kernel == 2  # the paper's


def test_ecg_encoder_rejects_bad_input() -> None:
    enc = build_ecg_encoder("micro")
    with pytest.raises(ValueError, match=r"\(B, 12, T\)"):
        enc(torch.zeros(2, 8, 1000))
    with pytest.raises(ValueError, match="at least 16"):
        enc(torch.zeros(2, 12, 15))
    bad = torch.zeros(1, 12, 64)
    bad[0, 3, 10] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        enc(bad)
    with pytest.raises(ValueError, match="unknown ECG encoder size"):
        build_ecg_encoder(ECGEncoderConfig(size="huge"))  # type: ignore[arg-type]


def test_encoder_layer_matches_torch_post_ln_layer() -> None:
    torch.manual_seed(0)
    ours = EncoderLayer(width=32, heads=4, ffn_dim=64, dropout=0.0, attention_dropout=0.0).eval()
    ref = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, activation="gelu", batch_first=True).eval()
    with torch.no_grad():
        ref.self_attn.in_proj_weight.copy_(ours.qkv.weight)
        ref.self_attn.in_proj_bias.copy_(ours.qkv.bias)
        ref.self_attn.out_proj.load_state_dict(ours.out_proj.state_dict())
        ref.linear1.load_state_dict(ours.fc1.state_dict())
        ref.linear2.load_state_dict(ours.fc2.state_dict())
        ref.norm1.load_state_dict(ours.attn_norm.state_dict())
        ref.norm2.load_state_dict(ours.ffn_norm.state_dict())
    x = torch.randn(3, 10, 32)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("init", ["default", "bert"])
def test_ecg_transformer_init(init: str) -> None:
    """default = the reference fork (no init_bert_params): Xavier q/k/v (gain 1/sqrt 2), PyTorch FFN;
    bert = fairseq's init_bert_params: every Linear N(0, 0.02), zero biases."""
    torch.manual_seed(0)
    width = 768
    enc = build_ecg_encoder(ECGEncoderConfig(size="small", layers=1, init=init))  # type: ignore[arg-type]
    layer = enc.layers[0]
    bound = (2**-0.5) * (6 / (2 * width)) ** 0.5  # Xavier-uniform bound of one D x D block
    for block in layer.qkv.weight.detach().chunk(3, dim=0):
        if init == "default":
            assert block.abs().max() <= bound
            assert abs(block.std().item() - bound / 3**0.5) < 0.02 * bound
        else:
            assert abs(block.std().item() - 0.02) < 0.001
    fc1_bias = layer.fc1.bias.detach()
    if init == "default":
        assert fc1_bias.abs().max() <= width**-0.5 and fc1_bias.abs().min() > 0  # PyTorch default
        assert torch.count_nonzero(layer.out_proj.bias) == 0
        assert abs(layer.fc1.weight.std().item() - (1 / (3 * width)) ** 0.5) < 0.001  # kaiming_uniform(a=sqrt 5)
    else:
        assert torch.count_nonzero(fc1_bias) == 0 and torch.count_nonzero(layer.qkv.bias) == 0
        assert abs(layer.fc1.weight.std().item() - 0.02) < 0.001
    with pytest.raises(ValueError, match="unknown ECG encoder init"):
        build_ecg_encoder(ECGEncoderConfig(size="micro", init="xavier"))  # type: ignore[arg-type]


def test_feature_extractor_gradient_is_scaled() -> None:
    grads = {}
    for mult in (1.0, 0.1):
        torch.manual_seed(0)
        enc = build_ecg_encoder(
            ECGEncoderConfig(size="micro", feature_grad_mult=mult, dropout=0.0, attention_dropout=0.0)
        )
        enc(torch.randn(2, 12, 320, generator=torch.Generator().manual_seed(1))).square().sum().backward()
        grads[mult] = (enc.feature_extractor.convs[0].weight.grad, enc.post_extract_proj.weight.grad)
    torch.testing.assert_close(grads[0.1][0], 0.1 * grads[1.0][0])
    torch.testing.assert_close(grads[0.1][1], grads[1.0][1])


def test_attentional_pooler_weights_match_fast_path() -> None:
    torch.manual_seed(0)
    pool = AttentionalPooler(d_model=32, context_dim=48, n_queries=5, heads=4)
    ctx = torch.randn(3, 20, 48)
    fast, none = pool(ctx)
    slow, attn = pool(ctx, return_weights=True)
    assert none is None and attn is not None and attn.shape == (3, 5, 20)
    torch.testing.assert_close(attn.sum(-1), torch.ones(3, 5))
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
def test_attention_computes_in_float32_on_the_cpu(causal: bool) -> None:
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 9, 8) for _ in range(3))
    assert torch.equal(attention(q, k, v, is_causal=causal), F.scaled_dot_product_attention(q, k, v, is_causal=causal))
    half = [t.bfloat16().requires_grad_() for t in (q, k, v)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = attention(*half, is_causal=causal)
    expected = F.scaled_dot_product_attention(*(t.float() for t in half), is_causal=causal).bfloat16()
    assert out.dtype == torch.bfloat16 and torch.equal(out, expected)
    out.float().square().sum().backward()
    assert all(t.grad is not None and t.grad.dtype == torch.bfloat16 and t.grad.isfinite().all() for t in half)


def test_forward_shapes(model: MELP) -> None:
    batch = batch_for(model)
    b, n = batch["input_ids"].shape
    out = model(ecg=batch["ecg"], input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    e, q, v = model.config.embed_dim, model.config.n_beat_queries, model.text.bert.config.vocab_size
    assert out["ecg_latent"].shape == out["text_latent"].shape == (b, e)
    torch.testing.assert_close(out["ecg_latent"].norm(dim=-1), torch.ones(b))
    torch.testing.assert_close(out["text_latent"].norm(dim=-1), torch.ones(b))
    assert out["beat_embs"].shape == (b, q, e)
    assert out["sentence_embs"].shape[:2] == out["sentence_mask"].shape and out["sentence_embs"].shape[2] == e
    assert out["caption_logits"].shape == (b, n - 1, v)
    assert torch.equal(out["caption_labels"], batch["input_ids"][:, 1:])
    assert out["logit_scale"].shape == ()
    enc = model.encode_ecg(batch["ecg"])
    assert enc["beat_attn"].shape == (b, q, 400 // 16)
    assert enc["probe_emb"].shape == (b, e) and enc["ecg_tokens"].shape == (b, model.config.n_caption_queries, 64)


def test_tiny_preset_shapes(tmp_path: Path) -> None:
    tiny = build_micro_model(tmp_path, size="tiny", hidden=256, layers=4, frozen=2)
    batch = batch_for(tiny, n=2, samples=1000)
    out = tiny(ecg=batch["ecg"], input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    assert out["beat_embs"].shape == (2, 12, 256)
    assert out["caption_logits"].shape[:2] == (2, batch["input_ids"].shape[1] - 1)


def _total_loss(model: MELP, out: dict[str, torch.Tensor]) -> torch.Tensor:
    from melp.losses import MELPLoss

    return MELPLoss(pad_id=model.config.text.pad_token_id)(out)["loss"]


def test_every_trainable_parameter_gets_a_gradient(tmp_path: Path) -> None:
    model = build_micro_model(tmp_path, layers=3, frozen=2)
    batch = batch_for(model, n=6)
    out = model(ecg=batch["ecg"], input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    _total_loss(model, out).backward()
    frozen = {f"text.bert.encoder.layer.{i}." for i in range(2)}
    for name, p in model.named_parameters():
        if any(name.startswith(f) for f in frozen):
            assert not p.requires_grad and p.grad is None, name
        else:
            assert p.requires_grad and p.grad is not None, name
            assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    assert not any(name.startswith("text.bert.pooler") or ".cls." in name for name, _ in model.named_parameters())


def test_caption_logits_are_causal(model: MELP) -> None:
    model.eval()
    batch = batch_for(model, n=3)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    base = model(ecg=batch["ecg"], input_ids=ids, attention_mask=mask)["caption_logits"]
    j = 4
    changed = ids.clone()
    changed[:, j] = (changed[:, j] + 7) % model.text.bert.config.vocab_size
    new = model(ecg=batch["ecg"], input_ids=changed, attention_mask=mask)["caption_logits"]
    torch.testing.assert_close(new[:, :j], base[:, :j])
    assert (new[:, j:] - base[:, j:]).abs().amax() > 1e-4


def test_logit_scale_clamp(model: MELP) -> None:
    with torch.no_grad():
        model.logit_scale.fill_(9.0)
    model.clamp_logit_scale_()
    assert model.logit_scale.item() == pytest.approx(model.config.logit_scale_max)
    with torch.no_grad():
        model.logit_scale.fill_(model.config.logit_scale_init)


def test_mismatched_batch_sizes_raise(model: MELP) -> None:
    batch = batch_for(model, n=3)
    with pytest.raises(ValueError, match="batch sizes differ"):
        model(ecg=batch["ecg"][:2], input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])


def test_save_load_round_trip(model: MELP, tmp_path: Path) -> None:
    model.eval()
    batch = batch_for(model, n=3)
    model.save_pretrained(tmp_path / "saved")
    assert {"config.json", "model.safetensors", "tokenizer_config.json"} <= {
        p.name for p in (tmp_path / "saved").iterdir()
    }
    assert not list((tmp_path / "saved").glob("*.bin")) and not list((tmp_path / "saved").glob("*.pt"))
    loaded = MELP.from_pretrained(tmp_path / "saved")
    assert not loaded.training
    assert dataclasses.asdict(loaded.config) == dataclasses.asdict(model.config)
    kwargs = {"ecg": batch["ecg"], "input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    a, b = model(**kwargs), loaded(**kwargs)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert loaded.tokenizer is not None and loaded.tokenizer.get_vocab() == model.tokenizer.get_vocab()  # type: ignore[union-attr]
    assert torch.equal(model.generate(batch["ecg"], max_length=8), loaded.generate(batch["ecg"], max_length=8))


def test_from_pretrained_rejects_other_directories(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a saved MELP model"):
        MELP.from_pretrained(tmp_path)


def test_bf16_autocast_forward_backward_is_finite(tmp_path: Path) -> None:
    model = build_micro_model(tmp_path)
    batch = batch_for(model)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(ecg=batch["ecg"], input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        loss = _total_loss(model, out)
    assert out["caption_logits"].dtype == torch.bfloat16 and out["ecg_latent"].dtype == torch.float32
    assert out["caption_labels"].dtype == torch.long  # ids never pass through bf16
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
