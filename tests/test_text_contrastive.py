"""Stage 1's sentence↔report contrastive phase: the loss against a per-row loop, the batch's
positives, and the phase itself (it trains the BERT that stage 2 reads, pooled as stage 2 pools)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from melp.data.synthetic.findings import sample_findings
from melp.data.synthetic.reports import write_report
from melp.losses.sentence_report import sentence_report_loss
from melp.train.text_contrastive import mean_word_states, report_sentences, sample_batch


def naive_loss(s: torch.Tensor, r: torch.Tensor, pos: torch.Tensor, temperature: float) -> torch.Tensor:
    """Both directions row by row: -log(Σ_positives exp / Σ_all exp), averaged."""
    total = 0.0
    n = s.shape[0]
    for i in range(n):  # sentence i against all reports
        sims = [float(s[i] @ r[j]) / temperature for j in range(n)]
        total += -np.log(sum(np.exp(x) for j, x in enumerate(sims) if pos[i, j]) / sum(np.exp(x) for x in sims))
    for j in range(n):  # report j against all sentences
        sims = [float(s[i] @ r[j]) / temperature for i in range(n)]
        total += -np.log(sum(np.exp(x) for i, x in enumerate(sims) if pos[i, j]) / sum(np.exp(x) for x in sims))
    return torch.tensor(total / (2 * n))


def test_loss_equals_the_per_row_loop_with_shared_sentences() -> None:
    g = torch.Generator().manual_seed(0)
    s = F.normalize(torch.randn(5, 8, generator=g, dtype=torch.float64), dim=-1)
    r = F.normalize(torch.randn(5, 8, generator=g, dtype=torch.float64), dim=-1)
    pos = torch.eye(5, dtype=torch.bool)
    pos[0, 3] = pos[2, 4] = pos[2, 1] = True  # sentences 0 and 2 also occur in other reports
    got = sentence_report_loss(s, r, pos, temperature=0.1)
    assert got.item() == pytest.approx(naive_loss(s, r, pos, 0.1).item(), rel=1e-6)


def test_loss_with_only_the_diagonal_is_the_clip_loss() -> None:
    g = torch.Generator().manual_seed(1)
    s, r = (F.normalize(torch.randn(6, 4, generator=g), dim=-1) for _ in range(2))
    logits = s @ r.T / 0.05
    clip = 0.5 * (F.cross_entropy(logits, torch.arange(6)) + F.cross_entropy(logits.T, torch.arange(6)))
    got = sentence_report_loss(s, r, torch.eye(6, dtype=torch.bool), temperature=0.05)
    assert got.item() == pytest.approx(clip.item(), rel=1e-5)


def test_loss_needs_a_positive_in_every_row_and_column() -> None:
    s = r = F.normalize(torch.randn(3, 4), dim=-1)
    pos = torch.eye(3, dtype=torch.bool)
    pos[1, 1] = False
    with pytest.raises(ValueError, match="positive"):
        sentence_report_loss(s, r, pos, temperature=0.1)
    with pytest.raises(ValueError, match="do not match"):
        sentence_report_loss(s, r, torch.eye(2, dtype=torch.bool), temperature=0.1)


def test_positives_are_the_reports_that_contain_the_drawn_sentence() -> None:
    a, b, c = (1, 2, 9), (3, 9), (4, 5, 9)  # 9 is the full stop
    reports = [[a, b], [b], [c, a], [c]]
    queries, flat, pos = sample_batch(reports, np.arange(4), np.random.default_rng(0))
    assert flat == [a + b, b, c + a, c]
    for i, q in enumerate(queries):
        assert q in reports[i]
        assert pos[i].tolist() == [q in r for r in reports]
    assert pos.diagonal().all()


def _reports(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [write_report(sample_findings(rng), rng) for _ in range(n)]


@pytest.fixture(scope="module")
def stage1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A micro stage 1 on synthetic reports: 10 masked-LM steps, then 30 contrastive steps."""
    from melp.train.config import TextPretrainConfig
    from melp.train.text_pretrain import train_text_encoder

    root = tmp_path_factory.mktemp("stage1")
    texts = root / "reports.txt"
    texts.write_text("\n".join(_reports(200, seed=0)) + "\n", encoding="utf-8")
    cfg = TextPretrainConfig(
        size="micro", max_steps=10, batch_size=16, lr=2e-3, warmup_steps=2, log_every=5, extra_text=[str(texts)],
        contrastive_steps=30, contrastive_batch_size=16, contrastive_lr=2e-3,
    )  # fmt: skip
    return train_text_encoder(cfg, stores=[_one_record_store(root / "store")], out=root / "text", device="cpu")


def _one_record_store(path: Path) -> Path:
    """A one-record synthetic store (stage 1 needs a store; the corpus is mostly the text file)."""
    from melp.data import build_store
    from melp.data.synthetic import SOURCE, SynthItem, process_item

    build_store(path, [SynthItem(seed=0, index=0, fs=100)], process_item, fs=100, seconds=10.0, source=SOURCE,
                progress=False)  # fmt: skip
    return path


def test_the_phase_follows_the_masked_lm_and_its_loss_falls(stage1: Path) -> None:
    lines = [json.loads(line) for line in (stage1 / "metrics.jsonl").read_text().splitlines()]
    mlm = [r for r in lines if r["phase"] == "mlm"]
    contrastive = [r for r in lines if r["phase"] == "contrastive"]
    assert [r["step"] for r in mlm] == [5, 10]
    assert [r["step"] for r in contrastive] == [15, 20, 25, 30, 35, 40]
    assert contrastive[-1]["contrastive_loss"] < 0.7 * contrastive[0]["contrastive_loss"]


def test_stage2_pools_the_trained_states_and_the_mlm_head_stays_tied(stage1: Path) -> None:
    from transformers import BertForMaskedLM

    from melp.models.config import MELPConfig
    from melp.models.melp import MELP

    mlm = BertForMaskedLM.from_pretrained(stage1)
    assert mlm.cls.predictions.decoder.weight.data_ptr() == mlm.bert.embeddings.word_embeddings.weight.data_ptr()
    config = MELPConfig.preset("micro")
    config.text.pooling = "mean"
    config.text.n_frozen_layers = 1
    model = MELP.from_text_model(config=config, text_model_dir=stage1).eval()
    reports = _reports(6, seed=1)
    from melp.data.collate import ECGReportCollator

    ids, mask = ECGReportCollator(model.tokenizer, max_length=config.text.max_length).tokenize(reports)
    specials = torch.tensor(sorted(set(model.tokenizer.all_special_ids)))
    with torch.no_grad():
        pooled = mean_word_states(model.text.bert, ids, mask, specials)  # what the phase trained
        expected = F.normalize(model.text.proj(pooled), dim=-1)
        got = model.encode_text(ids, mask)["text_latent"]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    sentences = report_sentences(model.tokenizer, reports, max_length=config.text.max_length)
    assert all(sentences) and sum(len(s) for s in sentences) == int(
        (ids == model.tokenizer.convert_tokens_to_ids(".")).sum()
    )


def test_a_trained_encoder_puts_sentences_next_to_their_reports(stage1: Path) -> None:
    """After the phase, a report's own sentences are closer to it than other reports' sentences."""
    from transformers import BertModel

    from melp.data.collate import ECGReportCollator
    from melp.models.tokenizer import load_tokenizer

    tok = load_tokenizer(stage1)
    bert = BertModel.from_pretrained(stage1, is_decoder=True, add_pooling_layer=False).eval()
    reports = _reports(40, seed=2)
    sentences = report_sentences(tok, reports, max_length=128)
    collator = ECGReportCollator(tok, max_length=128)
    specials = torch.tensor(sorted(set(tok.all_special_ids)))
    queries = [s[0] for s in sentences]
    with torch.no_grad():
        q = F.normalize(mean_word_states(bert, *collator.pack(queries), specials), dim=-1)
        r = F.normalize(mean_word_states(bert, *collator.tokenize(reports), specials), dim=-1)
    contains = torch.tensor([[query in s for s in sentences] for query in queries])
    sims = q @ r.T
    assert sims[contains].mean() > sims[~contains].mean() + 0.2


def test_bad_contrastive_settings_fail_before_stage_1_writes_anything(tmp_path: Path) -> None:
    from melp.train.config import TextPretrainConfig
    from melp.train.text_pretrain import train_text_encoder

    for bad in ({"contrastive_batch_size": 1}, {"contrastive_temperature": 0.0}, {"contrastive_steps": -1}):
        cfg = TextPretrainConfig(size="micro", max_steps=1, **bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="contrastive"):
            train_text_encoder(cfg, stores=[tmp_path / "missing"], out=tmp_path / "text", device="cpu")
        assert not (tmp_path / "text").exists()
