"""The rule-based report labeller on real report phrasings (MIMIC-IV-ECG style, PTB-XL English) and negation."""

from __future__ import annotations

import ast
import csv
from pathlib import Path

import pytest

from melp.eval.labeller import label_report

# MIMIC-IV-ECG machine-report statements (the phrasing of machine_measurements.csv report_0..17).
MIMIC_STYLE = [
    ("Sinus rhythm. Left axis deviation. Borderline ECG.", {"SR", "LAD"}),
    ("Sinus bradycardia. Otherwise normal ECG.", {"SBRAD", "NORM"}),
    (
        "Atrial fibrillation with rapid ventricular response. Incomplete right bundle branch block. Abnormal ECG.",
        {"AFIB", "IRBBB"},
    ),
    ("Sinus tachycardia. Ventricular premature complex. Left bundle branch block.", {"STACH", "PVC", "CLBBB"}),
    ("Sinus rhythm. 1st degree A-V block. Left anterior fascicular block.", {"SR", "1AVB", "LAFB"}),
    ("Atrial flutter with variable A-V block. Low QRS voltages in limb leads.", {"AFLT", "LVOLT"}),
    ("Sinus rhythm with atrial premature complexes. Prolonged QT interval.", {"SR", "PAC", "LNGQT"}),
    (
        "Sinus rhythm. Left ventricular hypertrophy with secondary repolarization abnormality. Inferior/lateral ST-T changes may be due to myocardial ischemia.",
        {"SR", "LVH", "ISC", "STTC"},
    ),
    (
        "Sinus rhythm. Right axis deviation. RBBB. Inferior infarct - age undetermined.",
        {"SR", "RAD", "CRBBB", "IMI", "MI"},
    ),
    ("Sinus rhythm. Nonspecific ST-T abnormality. Abnormal ECG.", {"SR", "NST", "STTC"}),
    ("Sinus bradycardia with 1st degree A-V block. Lateral T wave changes.", {"SBRAD", "1AVB", "TAB"}),
    ("Atrial fibrillation with slow ventricular response. Anterior ST-T changes.", {"AFIB", "STTC"}),
    ("Ventricular paced rhythm. No further analysis.", {"PACE"}),
]

NEGATED = [
    ("No ST elevation.", set()),
    ("Sinus rhythm without ST elevation.", {"SR"}),
    ("Sinus rhythm. No evidence of atrial fibrillation.", {"SR"}),
    ("Absence of Q waves. Normal ECG.", {"NORM"}),
    ("ST elevation is absent. T wave inversion in V1.", {"INVT"}),
    ("Atrial fibrillation no longer present. Sinus rhythm.", {"SR"}),
    ("Sinus rhythm with no ST depression, but T wave inversion in lateral leads.", {"SR", "INVT"}),
]


@pytest.mark.parametrize(("report", "expected"), MIMIC_STYLE)
def test_mimic_style_statements(report: str, expected: set[str]) -> None:
    assert label_report(report) == expected


@pytest.mark.parametrize(("report", "expected"), NEGATED)
def test_negation(report: str, expected: set[str]) -> None:
    assert label_report(report) == expected


def test_incomplete_bundle_branch_block_is_not_complete() -> None:
    assert label_report("incomplete right bundle branch block") == {"IRBBB"}
    assert label_report("incomplete left bundle branch block. complete right bundle branch block") == {"ILBBB", "CRBBB"}


def test_hedged_findings_count_as_stated() -> None:
    assert "ISC" in label_report("myocardial ischaemia cannot be excluded.")
    assert "LVH" in label_report("possible left ventricular hypertrophy")


def test_synthetic_reports_match_their_labels() -> None:
    synthetic = pytest.importorskip("melp.data.synthetic.generator", reason="synthetic corpus not available")
    codes = set(pytest.importorskip("melp.data.synthetic").LABEL_CODES)
    for index in range(150):
        record = synthetic.generate_record(seed=5, index=index, fs=100, seconds=2.0, noise=False)
        assert label_report(record.report) & codes == set(record.labels), record.report


# PTB-XL English reports (cinc2021/labels.csv, ptbxl-subset/ptbxl_database.csv) and the findings
# a reader takes from the text (which is not always what PTB-XL's scp_codes say: e.g. "low limb
# lead voltage" is stated in the text of records whose scp_codes omit LVOLT).
PTBXL_EXPECTED = {
    "sinus rhythm. normal ecg.": {"SR", "NORM"},
    "sinus bradycardia. otherwise normal ecg. the bradycardia may be physiological.": {"SBRAD", "NORM"},
    "sinus rhythm. left bundle branch block.": {"SR", "CLBBB"},
    "sinus rhythm. low limb lead voltage. right bundle branch block.": {"SR", "LVOLT", "CRBBB"},
    "sinus rhythm. prolonged pr interval. right bundle branch block.": {"SR", "1AVB", "LPR", "CRBBB"},
    "atrial fibrillation with rapid ventricular response. incomplete right bundle branch block. otherwise no definite pathology.": {
        "AFIB",
        "IRBBB",
        "NORM",
    },
    "sinus bradycardia. premature atrial contraction(s), bigeminy. prolonged pr interval 0.24 sec. left axis deviation. right bundle branch block.": {
        "SBRAD",
        "PAC",
        "BIGU",
        "1AVB",
        "LPR",
        "LAD",
        "CRBBB",
    },
    "sinus rhythm.  minor nonspecific anterior st.t changes.": {"SR", "NST", "STTC"},
    "atrial fibrillation. non-specific st segment depression in v4,5,6.": {"AFIB", "STD", "NST"},
}


def test_real_ptbxl_english_reports(shared_data: Path) -> None:
    database = shared_data / "ptbxl-subset" / "ptbxl_database.csv"
    with database.open(encoding="utf-8") as f:
        reports = {row["report"] for row in csv.DictReader(f)}
    present = {r: e for r, e in PTBXL_EXPECTED.items() if r in reports}
    assert len(present) >= 6, "the PTB-XL subset no longer holds the reports this test was written against"
    for report, expected in present.items():
        assert label_report(report) == expected, report


def test_cinc2021_ptbxl_reports_agree_with_scp_codes(shared_data: Path) -> None:
    path = shared_data / "ecg-records" / "cinc2021" / "labels.csv"
    with path.open(encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["ptbxl_report"] and r["ptbxl_report"].startswith("sinus ")]
    assert rows, "no English PTB-XL report in cinc2021/labels.csv"
    rhythm_codes = {"SR", "SBRAD", "STACH", "SARRH", "AFIB", "AFLT"}
    for row in rows:
        scp = set(ast.literal_eval(row["ptbxl_scp_codes"]))
        found = label_report(row["ptbxl_report"])
        assert found & rhythm_codes == scp & rhythm_codes, row["ptbxl_report"]


def test_clinical_score_known_answer() -> None:
    from melp.eval.textgen import clinical_counts, clinical_scores

    generated = [{"SR", "LAD"}, {"AFIB"}, set()]
    reference = [{"SR"}, {"AFIB", "CLBBB"}, {"STE"}]
    codes, counts = clinical_counts(generated, reference)
    scores, per_code = clinical_scores(codes, counts)
    # TP: SR, AFIB (2); FP: LAD (1); FN: CLBBB, STE (2)
    assert scores["clinical_micro_precision"] == pytest.approx(2 / 3)
    assert scores["clinical_micro_recall"] == pytest.approx(2 / 4)
    assert scores["clinical_micro_f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    # macro over the findings in a reference (SR, AFIB, CLBBB, STE): recalls 1, 1, 0, 0
    assert scores["clinical_macro_recall"] == pytest.approx(0.5)
    assert per_code["LAD"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "n_ref": 0, "n_gen": 1}


def test_generation_metrics_perfect_and_negated() -> None:
    from melp.eval.textgen import generation_metrics

    refs = ["sinus rhythm. left axis deviation. borderline ecg.", "atrial fibrillation. st elevation. abnormal ecg."]
    metrics, _, boot = generation_metrics(refs, refs, n_resamples=20, seed=0)
    assert metrics["bleu4"] == pytest.approx(1.0) and metrics["rouge_l"] == pytest.approx(1.0)
    assert metrics["clinical_micro_f1"] == pytest.approx(1.0)
    assert boot.n_valid == 20
    negated = ["sinus rhythm. no left axis deviation.", "atrial fibrillation. no st elevation."]
    metrics, _, _ = generation_metrics(negated, refs, n_resamples=0)
    assert metrics["clinical_micro_precision"] == pytest.approx(1.0)
    assert metrics["clinical_micro_recall"] == pytest.approx(0.5)


def test_corpus_bleu_from_statistics_equals_sacrebleu() -> None:
    import numpy as np
    import sacrebleu

    from melp.eval.textgen import CorpusBLEU

    gen = [
        "sinus rhythm. normal ecg.",
        "atrial fibrillation. left axis deviation.",
        "sinus tachycardia with pvcs.",
        "rbbb.",
    ]
    ref = [
        "sinus rhythm. borderline ecg.",
        "atrial fibrillation. abnormal ecg.",
        "sinus tachycardia.",
        "sinus rhythm. rbbb.",
    ]
    bleu = CorpusBLEU(gen, ref)
    for idx in (np.arange(4), np.array([0, 0, 2, 3]), np.array([1, 3, 3, 3])):
        expected = sacrebleu.corpus_bleu([gen[i] for i in idx], [[ref[i] for i in idx]]).score / 100
        assert bleu(idx) == pytest.approx(expected, abs=1e-12)


def test_clinical_macro_interval_contains_its_point_estimate() -> None:
    """A common finding always found plus rare ones never found: the macro recall is 1/11 on the
    whole set; resamples that average only over the findings they happen to contain would score
    higher and exclude the point estimate from its own interval."""
    from melp.eval.textgen import generation_metrics

    rare = [
        "atrial flutter.", "left bundle branch block.", "right bundle branch block.", "st elevation.",
        "st depression.", "left ventricular hypertrophy.", "low qrs voltages.", "right axis deviation.",
        "prolonged qt interval.", "first degree av block.",
    ]  # fmt: skip
    references = ["sinus rhythm."] * 30 + [f"sinus rhythm. {r}" for r in rare]
    generated = ["sinus rhythm."] * len(references)
    metrics, per_code, boot = generation_metrics(generated, references, n_resamples=200, seed=0)
    assert len([c for c, v in per_code.items() if v["n_ref"] > 0]) == 11
    assert metrics["clinical_macro_recall"] == pytest.approx(1 / 11)
    for name in ("clinical_macro_precision", "clinical_macro_recall", "clinical_macro_f1", "clinical_micro_recall"):
        low, high = boot.ci95[name]
        assert low - 1e-12 <= metrics[name] <= high + 1e-12, (name, low, high, metrics[name])
    # every rare finding is in few resamples: those without one are redrawn, and the notes say so
    assert boot.n_rejected > 0
    assert any(note.startswith("clinical_macro_*: ") and "rejected" in note for note in boot.notes)


def test_clinical_scores_macro_over_a_fixed_set_of_findings() -> None:
    import numpy as np

    from melp.eval.textgen import clinical_counts, clinical_scores

    codes, counts = clinical_counts([{"SR"}, set()], [{"SR"}, {"STE"}])  # codes: SR, STE
    fixed = np.array([True, True])
    # the first record alone holds no STE reference: STE still counts in the average, with recall 0
    scores, _ = clinical_scores(codes, counts[[0]], macro_over=fixed)
    assert scores["clinical_macro_recall"] == pytest.approx(0.5)
    scores, _ = clinical_scores(codes, counts[[0]])
    assert scores["clinical_macro_recall"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="one entry per finding"):
        clinical_scores(codes, counts, macro_over=np.array([True]))
