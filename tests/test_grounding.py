"""Beat-level grounding (melp.eval.grounding, melp ground): known answers, the frame mapping across rates, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from melp.cli.main import main
from melp.data import open_store
from melp.data.synthetic.reports import sentence_code, split_sentences
from melp.eval.grounding import (
    FALLBACK_HALF_WIDTH_S,
    beat_windows,
    best_query_scores,
    frames_covered,
    grounding_scores,
    grounding_targets,
    sentence_frame_attention,
    summarise,
)


def _covered(n: int, frames: list[int]) -> np.ndarray:
    out = np.zeros(n, bool)
    out[frames] = True
    return out


def test_attention_all_on_the_ectopic_frames_scores_one_over_the_uniform_share() -> None:
    covered = _covered(10, [2, 3, 7])
    attention = covered / covered.sum()
    s = grounding_scores(attention[None], covered[None], _covered(10, [2, 3, 5, 7])[None])  # frame 5: a normal beat
    assert s["mass"][0] == pytest.approx(1.0)
    assert s["share"][0] == pytest.approx(0.3)
    assert s["mass_ratio"][0] == pytest.approx(1 / 0.3)
    assert s["hit"][0] == 1.0
    assert s["beat_share"][0] == pytest.approx(0.75) and s["beat_mass_ratio"][0] == pytest.approx(4 / 3)


def test_uniform_attention_scores_ratio_one_and_attention_on_a_normal_beat_misses() -> None:
    covered, beats = _covered(8, [5]), _covered(8, [1, 5])  # frame 1: a normal beat
    uniform = grounding_scores(np.full((1, 8), 1 / 8), covered[None], beats[None])
    assert uniform["mass_ratio"][0] == pytest.approx(1.0) and uniform["mass"][0] == pytest.approx(1 / 8)
    assert uniform["beat_mass_ratio"][0] == pytest.approx(1.0) and uniform["beat_share"][0] == pytest.approx(0.5)
    on_normal = np.zeros(8)
    on_normal[1] = 1.0
    miss = grounding_scores(on_normal[None], covered[None], beats[None])
    assert miss["hit"][0] == 0.0 and miss["mass"][0] == 0.0 and miss["mass_ratio"][0] == 0.0
    assert miss["beat_mass_ratio"][0] == 0.0
    off_beats = np.zeros(8)
    off_beats[3] = 1.0  # between beats: no mass on any beat
    assert grounding_scores(off_beats[None], covered[None], beats[None])["beat_mass_ratio"][0] == 0.0
    with pytest.raises(ValueError, match="beat frame"):
        grounding_scores(on_normal[None], covered[None], _covered(8, [1])[None])


def test_grounding_scores_equal_a_naive_loop() -> None:
    rng = np.random.default_rng(0)
    attention = rng.dirichlet(np.ones(20), size=6)  # (S, N)
    covered = rng.random((6, 20)) < 0.2
    covered[:, 0] = True
    beats = covered | (rng.random((6, 20)) < 0.3)
    s = grounding_scores(attention, covered, beats)
    for k in range(6):
        mass = sum(attention[k, n] for n in range(20) if covered[k, n])
        beat_mass = sum(attention[k, n] for n in range(20) if beats[k, n])
        share, beat_share = sum(covered[k]) / 20, sum(covered[k]) / sum(beats[k])
        assert s["mass"][k] == pytest.approx(mass) and s["mass_ratio"][k] == pytest.approx(mass / share)
        assert s["hit"][k] == float(covered[k, int(np.argmax(attention[k]))])
        assert s["beat_mass_ratio"][k] == pytest.approx(mass / beat_mass / beat_share)
    with pytest.raises(ValueError, match="at least one ectopic frame"):
        grounding_scores(attention, np.zeros_like(covered), beats)


def test_best_query_is_the_query_with_most_mass_on_the_ectopic_frames() -> None:
    covered = np.stack([_covered(4, [2]), _covered(4, [0, 1])])  # (S=2, N=4)
    queries = np.array([[0.25, 0.25, 0.25, 0.25], [0.0, 0.0, 1.0, 0.0], [0.5, 0.5, 0.0, 0.0]])  # (Q=3, N)
    best = best_query_scores(np.stack([queries, queries]), covered, np.ones_like(covered))
    assert best["mass_ratio"].tolist() == [4.0, 2.0] and best["hit"].tolist() == [1.0, 1.0]
    rng = np.random.default_rng(2)
    attn = rng.dirichlet(np.ones(6), size=(3, 5))  # (S, Q, N)
    cov = rng.random((3, 6)) < 0.4
    cov[:, 0] = True
    got = best_query_scores(attn, cov, np.ones_like(cov))
    for k in range(3):
        naive = max(float(attn[k, q][cov[k]].sum()) for q in range(5))
        assert got["mass"][k] == pytest.approx(naive)


def test_frames_of_a_500_hz_store_read_by_a_100_hz_model() -> None:
    # QRS from sample 1000 (2.0 s) to 1049 (ends 2.1 s); the model's frames are 16 / 100 = 0.16 s long
    windows = beat_windows(np.array([1020]), np.array([1000]), np.array([1049]), fs=500)
    assert windows.tolist() == [[2.0, 2.1]]
    assert np.flatnonzero(frames_covered(windows, n_frames=62, fs=100)).tolist() == [12, 13]  # [1.92, 2.24) s
    # naive: a store sample s is model sample s // 5, in frame (s // 5) // 16
    rng = np.random.default_rng(1)
    for _ in range(50):
        on = int(rng.integers(0, 4900))
        off = on + int(rng.integers(0, 80))
        naive = sorted({(s // 5) // 16 for s in range(on, off + 1)})
        got = frames_covered(beat_windows(np.array([on]), np.array([on]), np.array([off]), fs=500), n_frames=62, fs=100)
        assert np.flatnonzero(got).tolist() == naive


def test_beat_window_falls_back_to_r_plus_minus_margin() -> None:
    windows = beat_windows(np.array([500, 900]), np.array([-1, 880]), np.array([520, 940]), fs=500)
    assert windows[0] == pytest.approx([1.0 - FALLBACK_HALF_WIDTH_S, 1.0 + FALLBACK_HALF_WIDTH_S])
    assert windows[1] == pytest.approx([880 / 500, 941 / 500])


def test_targets_are_finding_sentences_with_beats_of_their_type() -> None:
    assert sentence_code("Occasional PVCs.") == "PVC" and sentence_code("atrial premature complexes") == "PAC"
    assert sentence_code("Abnormal ECG") is None
    meta = pd.DataFrame(
        {
            "report": [
                "Sinus rhythm. Occasional PVCs. Abnormal ECG.",
                "Sinus rhythm. Premature atrial contractions.",  # no PAC beat: left out
                "Sinus rhythm. Premature atrial contractions. Premature ventricular contractions.",
            ],
            "beat_samples": [[100, 400, 700], [100, 400], [100, 300, 600, 900]],
            "beat_types": [["N", "PVC", "N"], ["N", "N"], ["N", "PAC", "PVC", "PAC"]],
            "qrs_onsets": [[90, 380, 690], [90, 390], [90, 290, 580, 890]],
            "qrs_offsets": [[140, 460, 740], [140, 440], [140, 340, 670, 940]],
        }
    )
    targets = grounding_targets(meta, np.arange(3), fs=100)
    assert [(t.row, t.sentence, t.code) for t in targets] == [(0, 1, "PVC"), (2, 1, "PAC"), (2, 2, "PVC")]
    assert targets[0].windows.tolist() == [[3.8, 4.61]]
    assert targets[0].all_windows.tolist() == [[0.9, 1.41], [3.8, 4.61], [6.9, 7.41]]
    assert targets[1].windows == pytest.approx(np.array([[2.9, 3.41], [8.9, 9.41]]))
    assert grounding_targets(meta.drop(columns="qrs_onsets"), np.arange(3), fs=100) == []


def test_summary_means_per_code_and_overall() -> None:
    covered = np.stack([_covered(4, [0]), _covered(4, [0, 1]), _covered(4, [3])])
    attention = np.array([[1.0, 0, 0, 0], [0.25, 0.25, 0.25, 0.25], [0.5, 0, 0, 0.5]])
    scores = {"cosine": grounding_scores(attention, covered, np.ones_like(covered))}
    metrics, boot = summarise(["PVC", "PAC", "PVC"], scores, n_resamples=50, seed=0)
    assert metrics["n_sentences"] == 3 and metrics["PVC/n_sentences"] == 2 and metrics["PAC/n_sentences"] == 1
    assert metrics["cosine/mass_ratio"] == pytest.approx((4 + 1 + 2) / 3)
    assert metrics["PVC/cosine/mass_ratio"] == pytest.approx(3.0)
    assert metrics["PVC/cosine/hit_rate"] == pytest.approx(0.5)  # the tie in row 3 goes to frame 0: not ectopic
    assert metrics["cosine/hit_rate"] == pytest.approx(2 / 3)  # row 2's uniform tie also goes to frame 0: ectopic
    assert metrics["chance_hit_rate"] == pytest.approx((0.25 + 0.5 + 0.25) / 3)
    assert metrics["chance_beat_hit_rate"] == pytest.approx(metrics["chance_hit_rate"])  # every frame a beat frame
    lo, hi = boot.ci95["cosine/mass_ratio"]
    assert lo <= metrics["cosine/mass_ratio"] <= hi and boot.n_valid == 50
    assert "PAC/cosine/mass_ratio" in boot.ci95


@pytest.fixture(scope="module")
def ectopic_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 synthetic records at 500 Hz (seed 5: records with PVC and with PAC sentences and beats)."""
    out = tmp_path_factory.mktemp("ground") / "store"
    assert main(["synth", "--n", "40", "--out", str(out), "--seed", "5", "--fs", "500", "--no-progress"]) == 0
    return out


def _expected_sentences(store: Path) -> dict[str, int]:
    meta = open_store(store).meta
    counts = {"PVC": 0, "PAC": 0}
    for report, types in zip(meta["report"], meta["beat_types"]):
        for sentence in split_sentences(report):
            code = sentence_code(sentence)
            if code in counts and code in list(types):
                counts[str(code)] += 1
    return counts


def test_batched_attention_equals_the_report_runners_one_record_path(
    micro_model: tuple[Path, Path], ectopic_store: Path
) -> None:
    from melp.report.explain import ModelRunner

    _, model_dir = micro_model
    runner = ModelRunner(model_dir=model_dir, store=open_store(ectopic_store))
    rows = [0, 4, 30]
    batch = runner.collator([runner.dataset[i] for i in rows])
    maps = sentence_frame_attention(runner.model, batch["ecg"], batch["input_ids"], batch["attention_mask"])
    for row, got in zip(rows, maps):
        single = runner.alignment(row)
        expected = single.sentence_to_query @ single.beat_attn  # (S, N)
        np.testing.assert_allclose(got["cosine"], expected, atol=1e-5)
        np.testing.assert_allclose(got["cosine"].sum(axis=1), 1.0, atol=1e-5)
        np.testing.assert_allclose(got["alpha"].sum(axis=1), 1.0, atol=1e-5)
        np.testing.assert_allclose(got["queries"], single.beat_attn, atol=1e-5)
        assert got["cosine"].shape == (len(split_sentences(runner.store.meta["report"][row])), 5000 // 5 // 16)


def test_melp_ground_end_to_end_for_model_and_random_baseline(
    micro_model: tuple[Path, Path], ectopic_store: Path, tmp_path: Path
) -> None:
    from melp.eval.results import comparison_table

    _, model = micro_model
    expected = _expected_sentences(ectopic_store)
    assert expected["PVC"] >= 1 and expected["PAC"] >= 1
    common = ["--test", str(ectopic_store), "--bootstrap", "100", "--no-cache", "--no-progress", "--batch-size", "3"]
    assert main(["ground", "--model", str(model), "--out", str(tmp_path / "g.json"), *common]) == 0
    argv = ["ground", "--model", "random", "--size", "micro", "--text-from", str(model), *common]
    assert main([*argv, "--out", str(tmp_path / "r.json")]) == 0
    results = [json.loads((tmp_path / name).read_text()) for name in ("g.json", "r.json")]
    assert [r["model"] for r in results] == ["model", "random-micro"]
    for res in results:
        m = res["metrics"]
        assert res["task"] == "grounding" and res["config"]["protocol"] == "grounding"
        assert res["config"]["store_fs"] == 500 and res["config"]["model_fs"] == 100
        assert m["PVC/n_sentences"] == expected["PVC"] and m["PAC/n_sentences"] == expected["PAC"]
        assert m["n_sentences"] == expected["PVC"] + expected["PAC"] and m["n_truncated"] == 0
        assert 0.0 < m["chance_hit_rate"] < m["chance_beat_hit_rate"] < 1.0
        for link in ("cosine", "alpha"):
            assert 0.0 <= m[f"{link}/hit_rate"] <= 1.0 and 0.0 <= m[f"{link}/mass"] <= 1.0
            assert m[f"{link}/beat_mass_ratio"] > 0.0
            assert m[f"{link}/mass_ratio"] == pytest.approx(m[f"{link}/mass_ratio"])  # finite
            lo, hi = res["ci95"][f"{link}/mass_ratio"]
            assert lo <= m[f"{link}/mass_ratio"] <= hi
        # a link's attention is a mixture of the queries': never more mass than the best query
        assert m["best_query/mass"] >= max(m["cosine/mass"], m["alpha/mass"]) - 1e-9
    assert results[0]["metrics"]["chance_hit_rate"] == results[1]["metrics"]["chance_hit_rate"]
    table = comparison_table(results)
    assert "| grounding | grounding |" in table and "cosine/mass_ratio" in table and "alpha/hit_rate" in table
    assert "cosine/mass_ratio" in (tmp_path / "g.md").read_text()


def test_eval_suite_runs_grounding_on_a_store_with_beat_truth(
    micro_model: tuple[Path, Path], ectopic_store: Path, tmp_path: Path
) -> None:
    _, model = micro_model
    argv = ["eval-suite", "--model", str(model), "--test", str(ectopic_store), "--no-generate", "--bootstrap", "20"]
    assert main([*argv, "--out-dir", str(tmp_path / "suite"), "--no-progress"]) == 0
    results = json.loads((tmp_path / "suite" / "results.json").read_text())["results"]
    assert {r["model"] for r in results if r["task"] == "grounding"} == {"model", "random-micro"}
