"""The analytic FLOP counter against torch's FlopCounterMode on a micro model, forward and backward."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from melp.data.collate import ECGReportCollator
from melp.losses import MELPLoss
from melp.models import MELP, MELPConfig, train_wordpiece_tokenizer
from melp.models.flops import melp_training_flops
from melp.models.tokenizer import build_bert_config, build_text_model_dir

REPORTS = [
    "sinus rhythm. normal ecg.",
    "atrial fibrillation with rapid ventricular response. left axis deviation. abnormal ecg.",
    "sinus bradycardia. first degree av block.",
    "sinus tachycardia. st elevation in anterior leads. acute mi suspected. abnormal ecg.",
    "sinus rhythm. right bundle branch block.",
    "atrial flutter.",
]


@pytest.mark.parametrize(
    ("frozen", "conv_pos_kernel", "decoder_width", "conv_kernel"), [(1, 16, 64, 2), (0, 15, 48, 4)]
)
def test_analytic_flops_match_flop_counter_mode(
    tmp_path: Path, frozen: int, conv_pos_kernel: int, decoder_width: int, conv_kernel: int
) -> None:
    tok = train_wordpiece_tokenizer(REPORTS, vocab_size=300)
    bert = build_bert_config(vocab_size=len(tok), hidden_size=64, num_layers=2, num_heads=2, intermediate_size=128)
    build_text_model_dir(tmp_path / "text", tokenizer=tok, config=bert)
    config = MELPConfig.preset("micro")
    config.text.n_frozen_layers = frozen
    config.text.max_length = 48
    config.ecg.conv_pos_kernel = conv_pos_kernel
    config.ecg.conv_kernel = conv_kernel
    config.decoder.width = decoder_width  # != the BERT width: the decoder's input projection is counted
    torch.manual_seed(0)
    model = MELP.from_text_model(config=config, text_model_dir=tmp_path / "text").train()
    ids, mask = ECGReportCollator(tok, max_length=48).tokenize(REPORTS)
    ecg = torch.rand(len(REPORTS), 12, 1000)
    loss_fn = MELPLoss(pad_id=model.config.text.pad_token_id)
    with sdpa_kernel(SDPBackend.MATH):  # decomposed into matmuls, which the counter sees on any CPU
        with FlopCounterMode(display=False) as fwd:
            out = model(ecg=ecg, input_ids=ids, attention_mask=mask)
            loss = loss_fn(out)["loss"]
        with FlopCounterMode(display=False) as bwd:
            loss.backward()
    n_sentences = out["sentence_embs"].shape[1]
    want = melp_training_flops(
        model.config, batch_size=len(REPORTS), text_length=ids.shape[1], n_sentences=n_sentences, ecg_samples=1000
    )
    assert fwd.get_total_flops() == pytest.approx(want.forward, rel=0.01)
    # torch's formula for a grouped convolution's weight gradient multiplies by the full input
    # channels instead of channels per group, so it counts the positional convolution's weight
    # gradient `groups` times (torch.utils.flop_counter.conv_backward_flop); the rest agrees exactly
    shape = model.config.ecg.shape()
    frames = 1000 // 16
    pos_conv = 2 * len(REPORTS) * (frames + 1 - conv_pos_kernel % 2) * shape.width**2 // shape.conv_pos_groups
    overcount = (shape.conv_pos_groups - 1) * pos_conv * conv_pos_kernel
    assert bwd.get_total_flops() - overcount == pytest.approx(want.backward, rel=0.01)
    assert 2.5 * want.forward < want.backward + want.forward < 3.01 * want.forward
    assert set(want.by_component) == {"ecg", "poolers", "text", "decoder", "losses"}


def test_flops_need_a_built_models_config() -> None:
    with pytest.raises(ValueError, match="bert_config is empty"):
        melp_training_flops(MELPConfig(), batch_size=2, text_length=8, n_sentences=2)
