"""The demo report: tables from results JSON, figures embedded as data URIs, alignment maths."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest

from melp.models.tokenizer import split_sentences
from melp.report import ReportInputs, ResultEntry, build_report, format_cell
from melp.report.alignment import (
    AlignmentExample,
    alignment_figure,
    detect_beats,
    ecg_paper_figure,
    sentence_links,
    sentence_time_attention,
    similarity_attention,
)
from melp.report.document import Alignment, Figure, Section, render_html, render_markdown
from melp.report.figures import figure_png, pick_roc_classes, read_metrics, read_scores

CLASSES = ("AFIB", "SR", "PVC", "LVH")


def _results(path: Path, *, macro: float, lo: float, hi: float, model: str) -> Path:
    data = {
        "task": "synthetic",
        "model": model,
        "dataset": "test",
        "metrics": {"macro_auroc": macro, "macro_max_f1": macro - 0.1, "n_records": 120},
        "ci95": {"macro_auroc": [lo, hi], "macro_max_f1": None},
        "per_class": {c: {"auroc": macro - 0.01 * i, "ci95": [lo, hi], "n_pos": 10 + i} for i, c in enumerate(CLASSES)},
        "config": {},
    }
    path.write_text(json.dumps(data))
    return path


def _scores(path: Path, *, informative: bool) -> Path:
    rng = np.random.default_rng(0)
    rows = ["id,labels," + ",".join(CLASSES)]
    for i in range(60):
        labels = [c for j, c in enumerate(CLASSES) if (i + j) % 3 == 0]
        scores = [(1.0 if c in labels else 0.0) * informative + rng.normal(scale=0.5) for c in CLASSES]
        rows.append(f"r{i},{';'.join(labels)}," + ",".join(f"{s:.4f}" for s in scores))
    path.write_text("\n".join(rows) + "\n")
    return path


def _metrics(path: Path) -> Path:
    lines = []
    for step in range(1, 41):
        row = {"step": step, "epoch": 0, "split": "train", "loss": 9.0 / step, "lr": 1e-3, "pairs_per_s": 20.0}
        row.update(clip_loss=3.0 / step, caption_loss=4.0 / step, local_loss=2.0 / step)
        lines.append(json.dumps(row))
        if step % 20 == 0:
            lines.append(
                json.dumps({"step": step, "epoch": 0, "split": "val", "clip_loss": 2.0 / step, "val_macro_auroc": 0.8})
            )
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def report(tmp_path: Path) -> tuple[Path, Path, dict[str, dict]]:
    melp = _results(tmp_path / "melp_zs.json", macro=0.912345, lo=0.88, hi=0.93, model="melp")
    rand = _results(tmp_path / "rand_zs.json", macro=0.51234, lo=0.47, hi=0.55, model="random")
    inputs = ReportInputs(
        out_dir=tmp_path / "out",
        intro=["A test report."],
        settings=[("records", "300")],
        results=[ResultEntry("zero-shot", "MELP", melp), ResultEntry("zero-shot", "random encoder", rand)],
        per_class={"MELP": melp, "random encoder": rand},
        metrics=_metrics(tmp_path / "metrics.jsonl"),
        scores={
            "MELP": _scores(tmp_path / "m.csv", informative=True),
            "random": _scores(tmp_path / "r.csv", informative=False),
        },
    )
    md, html = build_report(inputs)
    loaded = {p.name: json.loads(p.read_text()) for p in (melp, rand)}
    return md, html, loaded


def test_html_is_self_contained_with_figures_and_tables(report: tuple[Path, Path, dict]) -> None:
    _, html_path, _ = report
    html = html_path.read_text()
    images = re.findall(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 2  # training curves + ROC curves
    for data in images:
        assert base64.b64decode(data).startswith(b"\x89PNG\r\n\x1a\n")
    assert html.count("<table>") == 3  # settings, zero-shot headline, per-class
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched from outside
    assert "<link" not in html and "<script" not in html


def test_report_numbers_come_from_the_results_json(report: tuple[Path, Path, dict]) -> None:
    md_path, html_path, loaded = report
    md, html = md_path.read_text(), html_path.read_text()
    for data in loaded.values():
        cell = format_cell(data["metrics"]["macro_auroc"], data["ci95"]["macro_auroc"])
        assert cell in md and cell in html
        for code, item in data["per_class"].items():
            assert format_cell(item["auroc"], item["ci95"]) in md, code
    assert "0.912 [0.880, 0.930]" in md
    assert "| random encoder | 0.512 [0.470, 0.550] | 0.412 | 120 |" in md


def test_markdown_figures_exist_beside_it(report: tuple[Path, Path, dict]) -> None:
    md_path, _, _ = report
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md_path.read_text())
    assert len(links) == 2
    for link in links:
        assert (md_path.parent / link).read_bytes().startswith(b"\x89PNG")


def test_roc_classes_are_the_most_frequent_with_both_outcomes(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("id,labels,A,B,C\n1,A;B,0.1,0.2,0.3\n2,A,0.1,0.2,0.3\n3,,0.1,0.2,0.3\n4,A;C,0.1,0.2,0.3\n")
    frame, classes = read_scores(path)
    assert classes == ["A", "B", "C"]
    assert pick_roc_classes(frame, classes, k=2) == ["A", "B"]


def test_bad_artefacts_fail_clearly(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("id,A\n1,0.5\n")
    with pytest.raises(ValueError, match="labels"):
        read_scores(tmp_path / "bad.csv")
    (tmp_path / "m.jsonl").write_text('{"loss": 1.0}\n')
    with pytest.raises(ValueError, match="step"):
        read_metrics(tmp_path / "m.jsonl")
    (tmp_path / "r.json").write_text('{"task": "x"}')
    with pytest.raises(ValueError, match="metrics"):
        build_report(ReportInputs(out_dir=tmp_path, results=[ResultEntry("zero-shot", "MELP", tmp_path / "r.json")]))


def test_similarity_attention_is_a_softmax_of_scaled_cosines() -> None:
    rng = np.random.default_rng(1)
    sentences, beats = rng.normal(size=(3, 8)), rng.normal(size=(6, 8))
    got = similarity_attention(sentences * 7.0, beats * 0.1, temperature=5.0)  # scale-free
    for s in range(3):
        cos = [sentences[s] @ b / np.linalg.norm(sentences[s]) / np.linalg.norm(b) for b in beats]
        expected = np.exp(5.0 * np.array(cos)) / np.exp(5.0 * np.array(cos)).sum()
        np.testing.assert_allclose(got[s], expected, rtol=1e-10)
    with pytest.raises(ValueError, match="expected"):
        similarity_attention(sentences, beats[:, :4])


def _example(fs: float = 100.0) -> AlignmentExample:
    t = np.arange(1000) / fs
    beats = np.arange(50, 1000, 100)  # one beat per second
    lead = np.zeros_like(t)
    lead[beats] = 1.5
    signal = np.tile(np.convolve(lead, np.hanning(7), mode="same"), (12, 1))
    beat_attn = np.full((4, 50), 1e-3)
    beat_attn[0, 2] = beat_attn[1, 42] = beat_attn[2, 22] = beat_attn[3, 12] = 1.0  # frame k covers 0.2 k s
    beat_attn /= beat_attn.sum(axis=1, keepdims=True)
    to_query = np.array([[0.97, 0.01, 0.01, 0.01], [0.01, 0.97, 0.01, 0.01], [0.25, 0.25, 0.25, 0.25]])
    return AlignmentExample(
        record_id="r1",
        signal=signal,
        fs=fs,
        sentences=["Sinus rhythm.", "Left axis deviation.", "Abnormal ECG."],
        sentence_to_query=to_query,
        beat_attn=beat_attn,
        beats=beats,
    )


def test_sentence_links_name_the_attended_beats() -> None:
    example = _example()
    np.testing.assert_allclose(sentence_time_attention(example.sentence_to_query, example.beat_attn).sum(axis=1), 1.0)
    np.testing.assert_allclose(example.sentence_time.mean(axis=1), 1.0)  # relative to uniform
    links = sentence_links(example, max_beats=1)
    assert links[0].beat_numbers == (1,) and links[0].beat_times == (0.5,)  # query 0 looks at 0.4-0.6 s
    assert links[1].beat_numbers == (9,) and links[1].beat_times == (8.5,)  # query 1 looks at 8.4-8.6 s
    assert links[0].top_queries[0][0] == 0 and links[1].top_queries[0][0] == 1
    assert links[0].colour != links[1].colour
    assert links[0].peak > 30  # 0.97 of its attention on one query that looks at one frame of 50
    links = sentence_links(example, max_beats=10)
    assert links[2].beat_numbers == (1, 3, 5, 9)  # spread over the 4 queries: only the beats they look at


def test_detect_beats_finds_the_r_peaks() -> None:
    example = _example()
    found = detect_beats(example.signal, example.fs)
    assert len(found) == len(example.beats)
    assert np.abs(found - example.beats).max() <= 2


def test_alignment_block_renders_sentences_beside_the_figure(tmp_path: Path) -> None:
    example = _example()
    figures = [
        Figure(name="paper", png=figure_png(ecg_paper_figure(example)), caption="ECG paper"),
        Figure(name="align", png=figure_png(alignment_figure(example)), caption="alignment"),
    ]
    sections = [Section("Beat-level alignment", [Alignment(figures=figures, links=sentence_links(example))])]
    render_html(title="t", sections=sections, path=tmp_path / "r.html")
    render_markdown(title="t", sections=sections, path=tmp_path / "r.md")
    html = (tmp_path / "r.html").read_text()
    assert html.count("data:image/png;base64,") == 2
    for link in sentence_links(example):
        assert f'<li style="border-color:{link.colour}"><b style="color:{link.colour}">{link.sentence}</b>' in html
    assert "beat 1 (0.50 s)" in (tmp_path / "r.md").read_text()


def test_split_sentences_follows_the_text_encoder_rules() -> None:
    dot, bos, sep, pad = 9, 5, 3, 0
    specials = {bos, sep, pad}
    assert split_sentences([bos, 11, 12, dot, 13, dot, sep, pad], delimiter_id=dot, special_ids=specials) == [
        [11, 12, dot],
        [13, dot],
    ]
    assert split_sentences([bos, 11, 12, sep], delimiter_id=dot, special_ids=specials) == [[11, 12]]
    assert split_sentences([bos, 11, dot, 14, sep], delimiter_id=dot, special_ids=specials) == [[11, dot], [14]]
    assert split_sentences([bos, dot, 11, dot, sep, pad], delimiter_id=dot, special_ids=specials) == [[dot], [11, dot]]
