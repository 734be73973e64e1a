"""Label sets, by-name label matrices, stratified subsets and leak-free splits."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from melp.data.tasks import TASK_NAMES, TaskSpec, get_task, label_matrix, split_indices, subset_indices

SUB_TRAIN_ORDER = get_task("ptbxl_sub").classes


def _val_order() -> list[str]:
    """The column order of MELP's PTB-XL sub-class val/test CSVs: NORM, ISC, AVB, RAO/RAE."""
    order = list(SUB_TRAIN_ORDER)
    i = order.index("NORM")
    order[i + 1 : i + 4] = ["ISC", "AVB", "RAO/RAE"]
    return order


def test_registry_has_the_six_melp_tasks_with_spec_class_counts() -> None:
    counts = {name: get_task(name).n_classes for name in TASK_NAMES if name != "synthetic"}
    assert counts == {
        "ptbxl_super": 5,
        "ptbxl_sub": 23,
        "ptbxl_form": 19,
        "ptbxl_rhythm": 12,
        "cpsc2018": 9,
        "csn": 38,
    }
    assert get_task("cpsc2018").classes == ("AFIB", "VPC", "NORM", "1AVB", "CRBBB", "STE", "PAC", "CLBBB", "STD")
    assert get_task("ptbxl_super").label_column == "labels_super"
    assert get_task("ptbxl_rhythm").label_column == "labels_rhythm"
    assert SUB_TRAIN_ORDER[9:13] == ("NORM", "AVB", "RAO/RAE", "ISC")


def test_reference_names_and_spellings_resolve() -> None:
    assert get_task("ICBEB") is get_task("cpsc2018")
    assert get_task("chapman") is get_task("csn")
    assert get_task("ptbxl_sub_class") is get_task("ptbxl-sub")
    with pytest.raises(ValueError, match="known tasks: ptbxl_super"):
        get_task("mitbih")


def test_synthetic_task_uses_the_generator_codes() -> None:
    synthetic = pytest.importorskip("melp.data.synthetic", reason="melp.data.synthetic not written yet")
    if not hasattr(synthetic, "LABEL_CODES"):
        pytest.skip("melp.data.synthetic does not export LABEL_CODES yet")
    task = get_task("synthetic")
    assert task.classes == tuple(synthetic.LABEL_CODES) and task.n_classes == 20
    assert task.label_column == "labels"


def test_custom_tasks_and_their_validation() -> None:
    task = TaskSpec.from_classes("AFIB, NORM,1AVB", name="mine")
    assert task.classes == ("AFIB", "NORM", "1AVB") and task.label_column == "labels"
    with pytest.raises(ValueError, match="duplicated"):
        TaskSpec.from_classes(["AFIB", "AFIB"])
    with pytest.raises(ValueError, match="no classes"):
        TaskSpec.from_classes([])


def test_label_matrix_known_answer() -> None:
    meta = pd.DataFrame({"labels": [["NORM"], ["AFIB", "PAC", "XYZ"], [], "STD;AFIB", None]})
    labels = label_matrix(meta, "cpsc2018")
    expected = np.zeros((5, 9), np.float32)
    expected[0, 2] = 1
    expected[1, [0, 6]] = 1
    expected[3, [8, 0]] = 1
    assert labels.dtype == np.float32
    np.testing.assert_array_equal(labels, expected)
    meta.index = [10, 4, 7, 1, 3]  # a filtered meta frame keeps its row order, not its index
    np.testing.assert_array_equal(label_matrix(meta, "cpsc2018"), expected)


def test_label_matrix_ignores_label_order_and_follows_class_order() -> None:
    rng = np.random.default_rng(0)
    classes = list(SUB_TRAIN_ORDER)
    rows = [list(rng.choice(classes, size=rng.integers(0, 4), replace=False)) for _ in range(200)]
    shuffled = [list(rng.permutation(r)) if r else [] for r in rows]
    task = get_task("ptbxl_sub")
    a = label_matrix(pd.DataFrame({"labels_sub": rows}), task)
    b = label_matrix(pd.DataFrame({"labels_sub": shuffled}), task)
    np.testing.assert_array_equal(a, b)
    perm = rng.permutation(len(classes))
    permuted = TaskSpec(name="p", classes=tuple(classes[k] for k in perm), label_column="labels_sub")
    np.testing.assert_array_equal(label_matrix(pd.DataFrame({"labels_sub": rows}), permuted), a[:, perm])
    for i, row in enumerate(rows):
        assert {classes[j] for j in np.flatnonzero(a[i])} == set(row)


def test_by_name_selection_is_immune_to_the_reference_sub_class_misalignment() -> None:
    rng = np.random.default_rng(1)
    truth = (rng.random((300, 23)) < 0.2).astype(np.float32)  # (N, C) in train order
    train_csv = pd.DataFrame(truth, columns=list(SUB_TRAIN_ORDER))
    val_csv = train_csv[_val_order()]  # the same records written with the val/test column order
    header = pd.DataFrame({"ecg_id": np.arange(300), "strat_fold": 9})
    val_file = pd.concat([header, val_csv], axis=1)

    by_position = val_file.iloc[:, 2:].to_numpy(np.float32)  # the reference: iloc[:, k:] + train class names
    wrong = [c for j, c in enumerate(SUB_TRAIN_ORDER) if not np.array_equal(by_position[:, j], truth[:, j])]
    assert wrong == ["AVB", "RAO/RAE", "ISC"]

    for csv in (train_csv, val_file):
        codes = [[c for c in SUB_TRAIN_ORDER if row[c] > 0] for _, row in csv.iterrows()]
        np.testing.assert_array_equal(label_matrix(pd.DataFrame({"labels_sub": codes}), "ptbxl_sub"), truth)


def test_ptbxl_statement_spellings_are_aliases() -> None:
    meta = pd.DataFrame({"labels_sub": [["NST_"], ["_AVB", "ISC_"], ["NORM"]], "labels_form": [["STD_"], ["NT_"], []]})
    sub = label_matrix(meta, "ptbxl_sub")
    cols = get_task("ptbxl_sub").classes
    assert [cols[j] for j in np.flatnonzero(sub[1])] == ["AVB", "ISC"]
    assert cols[int(np.flatnonzero(sub[0])[0])] == "NST"
    form = label_matrix(meta, "ptbxl_form")
    fcols = get_task("ptbxl_form").classes
    assert [fcols[j] for j in np.flatnonzero(form.any(axis=0))] == ["STD", "NT"]


def test_classes_without_positives_are_kept_and_warned(caplog: pytest.LogCaptureFixture) -> None:
    meta = pd.DataFrame({"labels": [["NORM"], ["AFIB"]]})
    with caplog.at_level(logging.WARNING, logger="melp.data.tasks"):
        labels = label_matrix(meta, "cpsc2018")
    assert labels.shape == (2, 9)
    assert "7 of 9 classes have no positive record" in caplog.text and "CLBBB" in caplog.text


def test_label_matrix_errors() -> None:
    with pytest.raises(KeyError, match="labels_super"):
        label_matrix(pd.DataFrame({"labels": [["NORM"]]}), "ptbxl_super")
    with pytest.raises(TypeError, match="list of codes"):
        label_matrix(pd.DataFrame({"labels": [3]}), "cpsc2018")


def _multilabel(n: int = 2000, seed: int = 0) -> np.ndarray:
    """Labels with common, rare (3 positives) and absent classes."""
    rng = np.random.default_rng(seed)
    rates = np.array([0.5, 0.3, 0.1, 0.05, 0.02, 0.0])
    labels = (rng.random((n, len(rates))) < rates).astype(np.float32)
    rare = np.zeros((n, 3), np.float32)
    rare[rng.choice(n, 3, replace=False), 0] = 1
    rare[rng.choice(n, 1, replace=False), 1] = 1
    rare[rng.choice(n, 5, replace=False), 2] = 1
    return np.concatenate([labels, rare], axis=1)


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.5])
def test_subset_size_coverage_and_determinism(fraction: float) -> None:
    labels = _multilabel()
    idx = subset_indices(labels, fraction, seed=3)
    assert len(idx) == round(fraction * len(labels))
    assert np.array_equal(idx, np.unique(idx)) and idx.dtype == np.int64
    present = labels.sum(axis=0) > 0
    assert (labels[idx].sum(axis=0)[present] >= 1).all()  # every class that has a positive keeps one
    np.testing.assert_array_equal(idx, subset_indices(labels, fraction, seed=3))
    assert not np.array_equal(idx, subset_indices(labels, fraction, seed=4))


def test_subsets_are_nested_for_one_seed_and_full_fraction_is_everything() -> None:
    labels = _multilabel()
    one, ten = subset_indices(labels, 0.01, seed=0), subset_indices(labels, 0.1, seed=0)
    assert set(one) <= set(ten)
    np.testing.assert_array_equal(subset_indices(labels, 1.0, seed=0), np.arange(len(labels)))


def test_subset_keeps_single_label_proportions() -> None:
    rng = np.random.default_rng(5)
    sizes = np.array([1000, 600, 250, 100, 40, 10])
    y = rng.permutation(np.repeat(np.arange(6), sizes))
    labels = np.eye(6, dtype=np.float32)[y]
    for fraction in (0.01, 0.1, 0.3):
        idx = subset_indices(labels, fraction, seed=1)
        counts = labels[idx].sum(axis=0)
        expected = fraction * sizes
        assert np.all(np.abs(counts - expected) <= 2), (fraction, counts, expected)
        assert (counts >= 1).all()


def test_subset_too_small_for_all_classes_covers_rarest_first() -> None:
    labels = np.eye(4, dtype=np.float32)[np.repeat([0, 1, 2, 3], [50, 20, 5, 2])]
    idx = subset_indices(labels, 2 / 77, seed=0)
    assert len(idx) == 2
    assert set(np.flatnonzero(labels[idx].sum(axis=0))) == {2, 3}


def test_subset_argument_errors() -> None:
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\]"):
        subset_indices(np.ones((5, 2)), 10, seed=0)
    with pytest.raises(ValueError, match="matrix"):
        subset_indices(np.ones(5), 0.5, seed=0)


def test_strat_fold_split_is_ptbxl_default() -> None:
    meta = pd.DataFrame({"strat_fold": np.tile(np.arange(1, 11), 5), "patient_id": "p"})
    splits = split_indices(meta)
    folds = meta["strat_fold"].to_numpy()
    assert set(folds[splits["train"]]) == set(range(1, 9))
    assert set(folds[splits["val"]]) == {9} and set(folds[splits["test"]]) == {10}
    assert sum(len(v) for v in splits.values()) == len(meta)
    with pytest.raises(KeyError, match="strat_fold"):
        split_indices(meta.drop(columns="strat_fold"), "strat_fold")


def test_patient_split_has_no_leakage_and_is_seeded() -> None:
    rng = np.random.default_rng(2)
    patients = rng.integers(0, 300, size=1500).astype(str)
    patients[:40] = ""  # unknown patients: each record on its own
    meta = pd.DataFrame({"patient_id": patients})
    splits = split_indices(meta, seed=7)
    all_idx = np.concatenate(list(splits.values()))
    np.testing.assert_array_equal(np.sort(all_idx), np.arange(len(meta)))
    known = {name: set(patients[idx]) - {""} for name, idx in splits.items()}
    unknown_split = {name for name, idx in splits.items() if (idx < 40).any()}
    assert len(unknown_split) > 1  # records without a patient are not lumped together as one patient
    assert not (known["train"] & known["val"] or known["train"] & known["test"] or known["val"] & known["test"])
    for name, target in (("val", 0.1), ("test", 0.1), ("train", 0.8)):
        assert abs(len(splits[name]) / len(meta) - target) < 0.03
    again = split_indices(meta, "patient", seed=7)
    assert all(np.array_equal(splits[k], again[k]) for k in splits)
    other = split_indices(meta, "patient", seed=8)
    assert not np.array_equal(splits["test"], other["test"])


def test_split_argument_errors() -> None:
    meta = pd.DataFrame({"patient_id": ["a", "b"]})
    with pytest.raises(ValueError, match="unknown split scheme"):
        split_indices(meta, "random")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sum < 1"):
        split_indices(meta, "patient", val_fraction=0.6, test_fraction=0.5)


@pytest.mark.realdata
def test_real_ptbxl_super_split_labels_by_name(shared_data: Path) -> None:
    csv = pd.read_csv(shared_data / "ptbxl-subset" / "ptbxl_super_class_train.csv")
    task = get_task("ptbxl_super")
    meta = pd.DataFrame({"labels_super": csv["super_class"].map(ast.literal_eval), "strat_fold": csv["strat_fold"]})
    labels = label_matrix(meta, task)
    np.testing.assert_array_equal(labels, csv[list(task.classes)].to_numpy(np.float32))
    assert set(split_indices(meta)["train"]) == set(range(len(csv)))  # the train file holds folds 1-8 only
    idx = subset_indices(labels, 0.01, seed=0)
    assert len(idx) == round(0.01 * len(csv)) and (labels[idx].sum(axis=0) >= 1).all()


def test_evaluation_leaves_out_records_without_a_label_of_the_task() -> None:
    """As the MELP split files define the populations (e.g. PTB-XL form: records with a form statement)."""
    from types import SimpleNamespace

    from melp.eval.runs import Selection, Settings, task_records

    meta = pd.DataFrame({"labels": [["NORM"], [], ["MI", "CD"], ["XYZ"]]})
    sel = Selection(SimpleNamespace(meta=meta), np.array([0, 1, 2, 3]), "s")  # type: ignore[arg-type]
    task = TaskSpec.from_classes("NORM,MI,CD")
    assert task_records(sel, task, Settings()).indices.tolist() == [0, 2]
    assert task_records(sel, task, Settings(keep_unlabelled=True)).indices.tolist() == [0, 1, 2, 3]
    with pytest.raises(SystemExit, match="no record with a label"):
        task_records(Selection(sel.store, np.array([1, 3]), "s"), task, Settings())
