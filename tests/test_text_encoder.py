"""Text side (spec §2.1): tokenizer, causal BERT, global token, vectorised sentence embeddings."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from melp.data.collate import ECGReportCollator
from melp.models import MELP, MELPConfig, load_tokenizer, train_wordpiece_tokenizer
from melp.models.tokenizer import SPECIAL_TOKENS, build_bert_config, build_text_model_dir
from tests.test_models import REPORTS, build_micro_model


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> MELP:
    return build_micro_model(tmp_path_factory.mktemp("text")).eval()


def test_tokenizer_special_tokens_and_delimiter() -> None:
    tok = train_wordpiece_tokenizer(REPORTS, vocab_size=200)
    assert tok.convert_tokens_to_ids(list(SPECIAL_TOKENS)) == [0, 1, 2, 3, 4, 5]
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.sep_token_id) == (0, 5, 3, 3)
    assert tok.convert_tokens_to_ids(".") != tok.unk_token_id
    assert tok.tokenize("Sinus Rhythm.") == ["sinus", "rhythm", "."]
    # the delimiter is in the vocabulary even when the corpus never uses it
    assert train_wordpiece_tokenizer(["no full stop here"] * 3, vocab_size=50).convert_tokens_to_ids(".") != 1


def test_load_tokenizer_round_trip_and_adds_bos(tmp_path: Path) -> None:
    tok = train_wordpiece_tokenizer(REPORTS, vocab_size=200)
    tok.save_pretrained(tmp_path / "a")
    again = load_tokenizer(tmp_path / "a")
    assert again.get_vocab() == tok.get_vocab() and again.bos_token == "[BOS]" and again.eos_token == "[SEP]"
    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4, ".": 5, "sinus": 6}
    backend = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    stock = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]"
    )
    stock.save_pretrained(tmp_path / "b")
    loaded = load_tokenizer(tmp_path / "b")  # a stock BERT vocabulary has no [BOS]: it is appended
    assert loaded.bos_token == "[BOS]" and loaded.bos_token_id == 7 and len(loaded) == 8
    assert loaded.eos_token_id == loaded.sep_token_id == 3
    bert = build_bert_config(vocab_size=7, hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32)
    build_text_model_dir(tmp_path / "b", tokenizer=stock, config=bert)
    config = MELPConfig.preset("micro")
    config.text.n_frozen_layers = 0
    model = MELP.from_text_model(config=config, text_model_dir=tmp_path / "b")  # embeddings grow to 8 rows
    assert model.text.bert.get_input_embeddings().weight.shape[0] == 8 == model.config.text.bert_config["vocab_size"]
    assert model.config.text.bos_token_id == 7 and model.decoder.text_projection.out_features == 8


def test_global_token_sees_whole_report_and_ignores_padding(model: MELP) -> None:
    tok = model.tokenizer
    assert tok is not None
    collate = ECGReportCollator(tok, max_length=64)
    alone = collate([{"ecg": torch.zeros(12, 32), "report": REPORTS[0], "index": 0}])
    padded = collate([{"ecg": torch.zeros(12, 32), "report": r, "index": i} for i, r in enumerate(REPORTS[:3])])
    assert padded["input_ids"].shape[1] > alone["input_ids"].shape[1]
    a = model.encode_text(alone["input_ids"], alone["attention_mask"])
    b = model.encode_text(padded["input_ids"], padded["attention_mask"])
    torch.testing.assert_close(a["text_latent"][0], b["text_latent"][0], atol=1e-5, rtol=1e-5)
    n = alone["input_ids"].shape[1]
    torch.testing.assert_close(a["token_embs"][0], b["token_embs"][0, :n], atol=1e-5, rtol=1e-5)
    other = alone["input_ids"].clone()
    other[0, 2] = tok.convert_tokens_to_ids("block")
    c = model.encode_text(other, alone["attention_mask"])
    assert not torch.allclose(c["text_latent"], a["text_latent"])  # the last token sees every word


def _naive_sentences(model: MELP, ids: torch.Tensor, mask: torch.Tensor, states: torch.Tensor) -> list[torch.Tensor]:
    """Spec §2.1 step 4 as a plain loop, with the fixes: trailing text kept, empty sentences recorded as None."""
    cfg = model.config.text
    out = []
    for b in range(ids.shape[0]):
        sentences: list[list[torch.Tensor]] = [[]]
        for j in range(ids.shape[1]):
            token = int(ids[b, j])
            if mask[b, j] and token not in cfg.special_token_ids:
                sentences[-1].append(states[b, j])
            if token == cfg.sentence_delimiter_id:
                sentences.append([])
        out.append([torch.stack(s).mean(0) if s else None for s in sentences])
    return out


def test_sentence_embeddings_match_naive_loop(model: MELP) -> None:
    tok = model.tokenizer
    assert tok is not None
    reports = [
        "sinus rhythm. normal ecg.",  # ends with "."
        "atrial fibrillation with rapid ventricular response",  # no delimiter: one sentence
        "sinus bradycardia. st depression. t wave inversion",  # trailing text after the last "."
        "",  # empty report: no sentence at all
        "left axis deviation.. borderline ecg.",  # empty sentence between two "."
    ]
    batch = ECGReportCollator(tok, max_length=64)(
        [{"ecg": torch.zeros(12, 32), "report": r, "index": i} for i, r in enumerate(reports)]
    )
    ids, mask = batch["input_ids"], batch["attention_mask"]
    out = model.encode_text(ids, mask)
    embs, smask = out["sentence_embs"], out["sentence_mask"]
    assert embs.shape[0] == len(reports)
    expected = _naive_sentences(model, ids, mask, out["token_embs"])
    assert [int(m.sum()) for m in smask] == [2, 1, 3, 0, 3]
    for b, sentences in enumerate(expected):
        for s in range(embs.shape[1]):
            mean = sentences[s] if s < len(sentences) else None
            assert bool(smask[b, s]) == (mean is not None), (b, s)
            if mean is None:
                assert torch.all(embs[b, s] == 0)
            else:
                torch.testing.assert_close(embs[b, s], model.text.sent_proj(mean), atol=1e-5, rtol=1e-5)


def test_mean_pooling_is_the_mean_word_state_and_ignores_padding(model: MELP) -> None:
    tok = model.tokenizer
    assert tok is not None
    encoder = model.text
    encoder.pooling = "mean"
    try:
        collate = ECGReportCollator(tok, max_length=64)
        alone = collate([{"ecg": torch.zeros(12, 32), "report": REPORTS[0], "index": 0}])
        padded = collate([{"ecg": torch.zeros(12, 32), "report": r, "index": i} for i, r in enumerate(REPORTS[:3])])
        ids, mask = padded["input_ids"], padded["attention_mask"]
        out = model.encode_text(ids, mask)
        specials = set(model.config.text.special_token_ids)
        for b in range(ids.shape[0]):
            words = [j for j in range(ids.shape[1]) if mask[b, j] and int(ids[b, j]) not in specials]
            mean = out["token_embs"][b, words].mean(0)
            expected = torch.nn.functional.normalize(encoder.proj(mean), dim=-1)
            torch.testing.assert_close(out["text_latent"][b], expected, atol=1e-5, rtol=1e-5)
        a = model.encode_text(alone["input_ids"], alone["attention_mask"])
        torch.testing.assert_close(a["text_latent"][0], out["text_latent"][0], atol=1e-5, rtol=1e-5)
    finally:
        encoder.pooling = "cls"


def test_frozen_layers_and_no_mlm_head(model: MELP) -> None:
    bert = model.text.bert
    assert bert.config.is_decoder
    assert all(not p.requires_grad for p in bert.encoder.layer[0].parameters())
    assert all(p.requires_grad for p in bert.encoder.layer[1].parameters())
    assert all(p.requires_grad for p in bert.embeddings.parameters())
    assert bert.pooler is None


def _micro_model_with_text(tmp_path: Path, *, locked: bool) -> MELP:
    """A micro MELP on the micro text model written under ``tmp_path``, its text tower locked or not."""
    build_micro_model(tmp_path)  # writes the text model directory
    config = MELPConfig.preset("micro")
    config.text.locked, config.text.n_frozen_layers, config.text.max_length = locked, 0, 64
    return MELP.from_text_model(config=config, text_model_dir=tmp_path / "text")


def test_a_locked_text_tower_gets_no_gradient_and_every_other_parameter_does(tmp_path: Path) -> None:
    from melp.losses import MELPLoss
    from tests.test_models import batch_for

    locked = _micro_model_with_text(tmp_path, locked=True)
    config = locked.config
    assert not any(p.requires_grad for p in locked.text.parameters())
    batch = batch_for(locked)
    terms = MELPLoss(pad_id=config.text.pad_token_id)(
        locked(**{k: batch[k] for k in ("ecg", "input_ids", "attention_mask")})
    )
    terms["loss"].backward()
    assert all(p.grad is None for p in locked.text.parameters())
    missing = [n for n, p in locked.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    assert not missing


def test_a_locked_text_tower_stays_in_eval_mode_without_dropout(tmp_path: Path) -> None:
    """Training mode reaches every module but the locked tower, whose states are then the same on every call."""
    from tests.test_models import batch_for

    model = _micro_model_with_text(tmp_path, locked=True).train()
    assert model.training and model.ecg_encoder.training and model.decoder.training
    assert not any(m.training for m in model.text.modules())
    assert model.text.bert.config.hidden_dropout_prob > 0
    batch = batch_for(model)
    first, second = (model.encode_text(batch["input_ids"], batch["attention_mask"]) for _ in range(2))
    assert torch.equal(first["token_embs"], second["token_embs"])
    trained = _micro_model_with_text(tmp_path, locked=False).train()
    assert trained.text.training and trained.text.bert.training


def test_bad_text_inputs_and_configs(model: MELP, tmp_path: Path) -> None:
    ids = torch.tensor([[5, 10, 3]])
    with pytest.raises(ValueError, match="integer"):
        model.encode_text(ids.float(), torch.ones_like(ids))
    with pytest.raises(ValueError, match=r"\(B, L\)"):
        model.encode_text(ids, torch.ones(1, 4, dtype=torch.long))
    too_long = torch.full((1, model.config.text.max_length + 1), 10)
    with pytest.raises(ValueError, match=r"exceeds text\.max_length"):
        model.encode_text(too_long, torch.ones_like(too_long))
    tok = train_wordpiece_tokenizer(REPORTS, vocab_size=200)
    build_text_model_dir(
        tmp_path,
        tokenizer=tok,
        config=build_bert_config(vocab_size=len(tok), hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64),
    )
    with pytest.raises(ValueError, match="n_frozen_layers=6 but the BERT has 2 layers"):
        MELP.from_text_model(config=MELPConfig.preset("micro"), text_model_dir=tmp_path)
