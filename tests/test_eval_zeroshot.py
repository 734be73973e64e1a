"""Zero-shot classifier path: prompt averaging, normalisation, and AUROC 1 on orthogonal toy embeddings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from melp.eval.metrics import classification_metrics
from melp.eval.prompts import class_prompts, load_prompt_bank
from melp.eval.zeroshot import build_class_embeddings, zeroshot_scores

# The six MELP label sets (melp-spec §4.3) and the synthetic findings: the prompt bank must cover them all.
LABEL_SETS = {
    "ptbxl_super": "HYP NORM MI CD STTC",
    "ptbxl_sub": "AMI LAFB/LPFB LVH STTC IMI SEHYP CRBBB WPW LAO/LAE NORM AVB RAO/RAE ISC LMI ISCI ISCA NST CLBBB ILBBB IRBBB PMI RVH IVCD",
    "ptbxl_form": "PAC DIG HVOLT STD LPR QWAVE VCLVH NDT TAB LOWT ABQRS LNGQT PRC(S) NT STE NST PVC INVT LVOLT",
    "ptbxl_rhythm": "SVARR BIGU STACH SARRH SBRAD TRIGU AFIB SR SVTAC PSVT AFLT PACE",
    "cpsc2018": "AFIB VPC NORM 1AVB CRBBB STE PAC CLBBB STD",
    "csn": "AQW UW SR WPW 2AVB AT VB ARS STTC SA STE VPB TWO STTU ALS APB 2AVB1 PRIE CCR CR AF AVB QTIE LBBB VEB SVT RBBB 1AVB STDD MI AFIB TWC PWC ERV RVH LVH ST JEB",
    "synthetic": "SR SBRAD STACH SARRH AFIB AFLT PVC PAC 1AVB CLBBB CRBBB LVH STE STD INVT LVOLT LAD RAD LNGQT NORM",
}


@pytest.mark.parametrize("task", sorted(LABEL_SETS))
def test_prompt_bank_covers_every_label_set(task: str) -> None:
    classes = LABEL_SETS[task].split()
    prompts = class_prompts(classes, load_prompt_bank())
    assert all(len(prompts[c]) >= 3 for c in classes)
    assert all(p == p.lower() for c in classes for p in prompts[c])


def test_prompt_bank_covers_the_registered_tasks() -> None:
    tasks = pytest.importorskip("melp.data.tasks", reason="melp.data.tasks (datasets helper) not available yet")
    bank = load_prompt_bank()
    for name in LABEL_SETS:
        class_prompts(tasks.get_task(name).classes, bank)


def test_external_prompt_file_and_name_matching(tmp_path: Path) -> None:
    path = tmp_path / "ckepe.json"
    path.write_text(
        json.dumps({"1AVB": "First degree AV block, first-degree atrioventricular block.", "STD_": ["ST depression"]})
    )
    prompts = class_prompts(["1AVB", "STD"], load_prompt_bank(path))
    assert prompts == {
        "1AVB": ["first degree av block, first-degree atrioventricular block."],
        "STD": ["st depression"],
    }
    with pytest.raises(KeyError, match="NORM"):
        class_prompts(["NORM"], load_prompt_bank(path))
    path.write_text(json.dumps({"X": []}))
    with pytest.raises(ValueError, match="non-empty"):
        load_prompt_bank(path)


class _FakeText:
    """Each prompt word indexes an orthogonal axis; a text embeds as the sum of its words' axes."""

    def __init__(self, vocab: list[str]) -> None:
        self.vocab = {w: i for i, w in enumerate(vocab)}

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        ids = [[self.vocab[w] for w in t.split()] for t in texts]
        width = max(len(i) for i in ids)
        input_ids = torch.tensor([i + [0] * (width - len(i)) for i in ids])
        mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i in ids])
        return {"input_ids": input_ids, "attention_mask": mask}

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        onehot = F.one_hot(input_ids, len(self.vocab)).float() * attention_mask.unsqueeze(-1)  # (B, L, V)
        return {"text_latent": F.normalize(onehot.sum(1), dim=-1)}


def test_class_embedding_is_the_renormalised_mean_of_normalised_prompts() -> None:
    fake = _FakeText(["a", "b", "c"])
    emb = build_class_embeddings(
        {"X": ["a", "a b"], "Y": ["c"]}, ["X", "Y"], tokenize=fake.tokenize, encode_text=fake.encode_text, batch_size=1
    )
    mean = (torch.tensor([1.0, 0, 0]) + torch.tensor([1.0, 1, 0]) / 2**0.5) / 2
    assert torch.allclose(emb[0], mean / mean.norm(), atol=1e-6)
    assert torch.allclose(emb[1], torch.tensor([0.0, 0, 1]))


def test_orthogonal_toy_embeddings_give_auroc_one() -> None:
    classes = ["AFIB", "LVH", "STE", "NORM"]
    prompts = {c: [f"{c.lower()}", f"{c.lower()} finding"] for c in classes}
    fake = _FakeText([c.lower() for c in classes] + ["finding", "unused"])
    class_emb = build_class_embeddings(prompts, classes, tokenize=fake.tokenize, encode_text=fake.encode_text)
    rng = np.random.default_rng(0)
    labels = (rng.random((50, 4)) < 0.4).astype(int)
    labels[0] = [1, 0, 0, 0]  # every class gets a negative and a positive
    labels[1] = [0, 1, 1, 1]
    axes = torch.eye(6)[:4]  # an ECG with finding k points along axis k (orthogonal across classes)
    background = torch.eye(6)[5]  # plus an axis no class uses, so a record without findings is not uniform
    ecg = torch.tensor(labels, dtype=torch.float32) @ axes + background  # (B, D)
    scores = zeroshot_scores(ecg, class_emb).numpy()
    macro, per_class = classification_metrics(labels, scores, classes)
    assert macro["macro_auroc"] == pytest.approx(1.0)
    assert all(m.auroc == pytest.approx(1.0) for m in per_class)


def test_scores_are_cosines() -> None:
    scores = zeroshot_scores(torch.tensor([[3.0, 4.0]]), torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
    assert torch.allclose(scores, torch.tensor([[0.6, 0.8]]))
    with pytest.raises(ValueError, match="class embeddings"):
        zeroshot_scores(torch.zeros(2, 3), torch.zeros(2, 4))
