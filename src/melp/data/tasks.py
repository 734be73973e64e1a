"""Benchmark label sets, label matrices, training subsets and splits (melp-spec §4.3, §9 item 1).

Label sets
==========

Each task names the store meta column that holds a record's label codes (a list of str per row)
and the classes it scores, in a fixed order that is the column order of every label matrix:

=============== ================= ==== ==========================================================
task            meta column       C    classes (in order)
=============== ================= ==== ==========================================================
``ptbxl_super`` ``labels_super``  5    HYP, NORM, MI, CD, STTC
``ptbxl_sub``   ``labels_sub``    23   AMI, LAFB/LPFB, LVH, STTC, IMI, SEHYP, CRBBB, WPW, LAO/LAE,
                                       NORM, AVB, RAO/RAE, ISC, LMI, ISCI, ISCA, NST, CLBBB, ILBBB,
                                       IRBBB, PMI, RVH, IVCD
``ptbxl_form``  ``labels_form``   19   PAC, DIG, HVOLT, STD, LPR, QWAVE, VCLVH, NDT, TAB, LOWT,
                                       ABQRS, LNGQT, PRC(S), NT, STE, NST, PVC, INVT, LVOLT
``ptbxl_rhythm`` ``labels_rhythm`` 12  SVARR, BIGU, STACH, SARRH, SBRAD, TRIGU, AFIB, SR, SVTAC,
                                       PSVT, AFLT, PACE
``cpsc2018``    ``labels``        9    AFIB, VPC, NORM, 1AVB, CRBBB, STE, PAC, CLBBB, STD
``csn``         ``labels``        38   AQW, UW, SR, WPW, 2AVB, AT, VB, ARS, STTC, SA, STE, VPB,
                                       TWO, STTU, ALS, APB, 2AVB1, PRIE, CCR, CR, AF, AVB, QTIE,
                                       LBBB, VEB, SVT, RBBB, 1AVB, STDD, MI, AFIB, TWC, PWC, ERV,
                                       RVH, LVH, ST, JEB
``synthetic``   ``labels``        20   :data:`melp.data.synthetic.LABEL_CODES`
=============== ================= ==== ==========================================================

The class lists are those of MELP's split files (the PTB-XL sub-class list in the order of its
*train* file). PTB-XL's own statement table spells some codes with underscores (``NST_``,
``ISC_``, ``_AVB``, ``STD_``, ``STE_``, ``NT_``, ``TAB_``); the PTB-XL tasks accept both spellings.
The reference names (``ptbxl_super_class``, ``ptbxl_sub_class``, ``icbeb``, ``chapman``) are
accepted by :func:`get_task`. Any other label set is a :meth:`TaskSpec.from_classes`.

Labels are selected **by class name**, never by column position. The reference reads MELP's split
CSVs by position, and the PTB-XL sub-class train file orders ``NORM, AVB, RAO/RAE, ISC`` where
the val/test files order ``NORM, ISC, AVB, RAO/RAE``, so three of 23 classes are scored against the
wrong labels there; :func:`label_matrix` cannot make that mistake. A class with no positive record
is kept (its column is all zero) and logged as a warning, so matrices of different splits always
have the same columns.

Subsets and splits
==================

:func:`subset_indices` draws the 1 % / 10 % / 100 % training subsets of the linear-probe protocol
with a seed. The reference's ``sample(frac=...)`` is unstratified and can lose rare classes; here
a seeded ordering of all records puts first one positive of every class (rarest class first;
at most C records, fewer when one record covers several classes), then the remaining records,
interleaved so that each stratum (a record's rarest class, or "no label") takes its share ±1 of
every prefix of them. A subset is a prefix of that ordering, so for one seed the subsets are
**nested** (1 % ⊂ 10 % ⊂ 100 %), and every class has a positive whenever the subset is at least as
large as the covering records (otherwise the rarest classes are covered first).

:func:`split_indices` gives train/val/test: PTB-XL's ``strat_fold`` (folds 1–8 / 9 / 10, the MELP
split) where the store has that column, otherwise a seeded patient-wise split in which no patient
appears in two splits.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

SplitScheme = Literal["auto", "strat_fold", "patient"]
SPLITS: tuple[str, ...] = ("train", "val", "test")
PTBXL_TRAIN_FOLDS: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)
PTBXL_VAL_FOLD = 9
PTBXL_TEST_FOLD = 10


@dataclass(frozen=True)
class TaskSpec:
    """A multi-label classification task over a store.

    Attributes:
        name: task name.
        classes: class codes, in the column order of the label matrix.
        label_column: meta column with each record's label codes (a list of str).
        description: one line for tables and logs.
        aliases: other spellings of class codes in the meta column (``{"NST_": "NST"}``).
    """

    name: str
    classes: tuple[str, ...]
    label_column: str = "labels"
    description: str = ""
    aliases: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        if not self.classes:
            raise ValueError(f"task {self.name!r} has no classes")
        bad = [c for c in self.classes if not isinstance(c, str) or not c.strip()]
        if bad:
            raise ValueError(f"task {self.name!r}: class names must be non-empty strings, got {bad}")
        dupes = sorted({c for c in self.classes if self.classes.count(c) > 1})
        if dupes:
            raise ValueError(f"task {self.name!r}: duplicated class names {dupes}")
        unknown = sorted(set(self.aliases.values()) - set(self.classes))
        if unknown:
            raise ValueError(f"task {self.name!r}: aliases point to classes it does not have: {unknown}")

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @classmethod
    def from_classes(
        cls,
        classes: str | Iterable[str],
        *,
        name: str = "custom",
        label_column: str = "labels",
        description: str = "",
    ) -> TaskSpec:
        """A custom task; ``classes`` is a sequence of codes or one comma-separated string."""
        codes = classes.split(",") if isinstance(classes, str) else list(classes)
        return cls(
            name=name,
            classes=tuple(c.strip() for c in codes),
            label_column=label_column,
            description=description,
        )


def split_store_ref(ref: str) -> tuple[str, str]:
    """``(path, split)`` of a store reference ``PATH`` or ``PATH:SPLIT``; ``split`` is "" for a plain path.

    Only a suffix naming one of :data:`SPLITS` after a non-empty path is a split, so a store whose
    path is itself ``val`` stays a path.
    """
    path, _, split = ref.rpartition(":")
    return (path, split) if path and split in SPLITS else (ref, "")


def _codes(text: str) -> tuple[str, ...]:
    """Class codes from one space-separated string (codes never contain spaces)."""
    return tuple(text.split())


_PTBXL_SUB_ALIASES = {"NST_": "NST", "ISC_": "ISC", "_AVB": "AVB"}
_PTBXL_FORM_ALIASES = {"NST_": "NST", "STD_": "STD", "STE_": "STE", "NT_": "NT", "TAB_": "TAB"}

_TASKS: dict[str, TaskSpec] = {
    task.name: task
    for task in (
        TaskSpec(
            name="ptbxl_super",
            classes=("HYP", "NORM", "MI", "CD", "STTC"),
            label_column="labels_super",
            description="PTB-XL diagnostic super-classes",
        ),
        TaskSpec(
            name="ptbxl_sub",
            classes=_codes(
                "AMI LAFB/LPFB LVH STTC IMI SEHYP CRBBB WPW LAO/LAE NORM AVB RAO/RAE ISC LMI ISCI ISCA NST CLBBB ILBBB IRBBB PMI RVH IVCD"
            ),
            label_column="labels_sub",
            description="PTB-XL diagnostic sub-classes",
            aliases=_PTBXL_SUB_ALIASES,
        ),
        TaskSpec(
            name="ptbxl_form",
            classes=_codes(
                "PAC DIG HVOLT STD LPR QWAVE VCLVH NDT TAB LOWT ABQRS LNGQT PRC(S) NT STE NST PVC INVT LVOLT"
            ),
            label_column="labels_form",
            description="PTB-XL form statements",
            aliases=_PTBXL_FORM_ALIASES,
        ),
        TaskSpec(
            name="ptbxl_rhythm",
            classes=_codes("SVARR BIGU STACH SARRH SBRAD TRIGU AFIB SR SVTAC PSVT AFLT PACE"),
            label_column="labels_rhythm",
            description="PTB-XL rhythm statements",
        ),
        TaskSpec(
            name="cpsc2018",
            classes=("AFIB", "VPC", "NORM", "1AVB", "CRBBB", "STE", "PAC", "CLBBB", "STD"),
            description="CPSC 2018 (ICBEB) diagnoses",
        ),
        TaskSpec(
            name="csn",
            classes=_codes(
                "AQW UW SR WPW 2AVB AT VB ARS STTC SA STE VPB TWO STTU ALS APB 2AVB1 PRIE CCR CR AF AVB QTIE LBBB VEB SVT RBBB 1AVB STDD MI AFIB TWC PWC ERV RVH LVH ST JEB"
            ),
            description="Chapman-Shaoxing-Ningbo (CSN) diagnoses",
        ),
    )
}
_ALIASES = {"ptbxl_super_class": "ptbxl_super", "ptbxl_sub_class": "ptbxl_sub", "icbeb": "cpsc2018", "chapman": "csn"}
TASK_NAMES: tuple[str, ...] = (*_TASKS, "synthetic")


def _synthetic_task() -> TaskSpec:
    from melp.data.synthetic import LABEL_CODES

    return TaskSpec(name="synthetic", classes=tuple(LABEL_CODES), description="melp synthetic corpus findings")


def get_task(name: str) -> TaskSpec:
    """The registered task ``name`` (case-insensitive; ``-`` and ``_`` alike; reference names accepted).

    Raises:
        ValueError: unknown name; the message lists the known ones.
    """
    key = name.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key == "synthetic":
        return _synthetic_task()
    if key not in _TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASK_NAMES)}")
    return _TASKS[key]


def _codes_of(value: Any) -> list[str]:
    """The label codes of one meta cell: a list/tuple/array of str, a ';'-joined str, or missing."""
    if isinstance(value, str):
        return [c.strip() for c in value.split(";") if c.strip()]
    if isinstance(value, list | tuple | np.ndarray):
        return [str(c) for c in value]
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    raise TypeError(f"label cell must be a list of codes, got {type(value).__name__}: {value!r}")


def label_matrix(meta: pd.DataFrame, task: TaskSpec | str) -> np.ndarray:
    """Multi-hot ``(N, C)`` float32 labels of ``meta``'s rows for ``task``, columns in ``task.classes`` order.

    Codes are matched by name (after ``task.aliases``); codes outside the task are ignored. A class
    with no positive row keeps its all-zero column and is logged as a warning.

    Raises:
        KeyError: ``meta`` lacks the task's label column.
    """
    spec = get_task(task) if isinstance(task, str) else task
    if spec.label_column not in meta.columns:
        raise KeyError(
            f"task {spec.name!r} reads labels from meta column {spec.label_column!r}, which this store lacks "
            f"(columns: {list(meta.columns)})"
        )
    codes = pd.Series([_codes_of(v) for v in meta[spec.label_column]], dtype=object).explode().dropna()
    column_of = {c: j for j, c in enumerate(spec.classes)}
    column_of.update({alias: column_of[name] for alias, name in spec.aliases.items()})
    cols = codes.map(column_of)
    hit = cols.notna().to_numpy()
    labels = np.zeros((len(meta), spec.n_classes), dtype=np.float32)  # (N, C)
    labels[codes.index.to_numpy()[hit], cols.to_numpy()[hit].astype(np.int64)] = 1.0
    empty = [c for c, n in zip(spec.classes, labels.sum(axis=0)) if n == 0]
    if empty and len(meta):
        logger.warning(
            "task %s: %d of %d classes have no positive record: %s", spec.name, len(empty), spec.n_classes, empty
        )
    return labels


def _check_labels(labels: np.ndarray) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 2:
        raise ValueError(f"labels must be a (records, classes) matrix, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("labels contain NaN or Inf")
    return arr > 0


def _strata(positive: np.ndarray) -> np.ndarray:
    """Each record's rarest positive class, or ``C`` for records with no positive."""
    counts = positive.sum(axis=0)  # (C,)
    rarity = np.where(positive, counts[None, :], np.iinfo(np.int64).max)  # (N, C)
    stratum = rarity.argmin(axis=1)
    return np.where(positive.any(axis=1), stratum, positive.shape[1])


def _stratified_order(positive: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ordering of all records: one positive per class (rarest first), then proportional interleave."""
    n, _ = positive.shape
    counts = positive.sum(axis=0)
    covered = np.zeros(positive.shape[1], dtype=bool)
    first: list[int] = []
    for c in np.argsort(counts, kind="stable"):
        if counts[c] == 0 or covered[c]:
            continue
        pick = int(rng.choice(np.flatnonzero(positive[:, c])))
        first.append(pick)
        covered |= positive[pick]
    rest = np.setdiff1d(np.arange(n), first)
    rest = rest[rng.permutation(len(rest))]
    stratum = _strata(positive[rest])
    by_stratum = np.argsort(stratum, kind="stable")
    rest, stratum = rest[by_stratum], stratum[by_stratum]
    start = np.searchsorted(stratum, stratum, side="left")
    size = np.bincount(stratum)[stratum]
    rank = np.arange(len(rest)) - start
    key = (rank + rng.random(len(rest))) / size  # evenly spread each stratum over (0, 1)
    return np.concatenate([np.asarray(first, dtype=np.int64), rest[np.argsort(key, kind="stable")]])


def subset_indices(labels: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """Sorted row indices of a seeded, stratified training subset of ``round(fraction × N)`` records.

    See the module docstring: every class keeps a positive where the size allows, strata keep their
    proportions, and for one seed smaller fractions give subsets of larger ones.

    Args:
        labels: ``(N, C)`` multi-hot labels (positive where > 0).
        fraction: in (0, 1]; 0.01, 0.1 and 1.0 are the MELP protocol.
        seed: seed of the draw.

    Raises:
        ValueError: bad fraction or labels.
    """
    positive = _check_labels(labels)
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1] (0.01 for 1 %), got {fraction}")
    n = positive.shape[0]
    size = min(n, max(1, round(fraction * n)))
    if size == n:
        return np.arange(n, dtype=np.int64)
    order = _stratified_order(positive, np.random.default_rng(seed))
    return np.sort(order[:size])


def _fold_split(meta: pd.DataFrame) -> dict[str, np.ndarray]:
    folds = pd.to_numeric(meta["strat_fold"], errors="coerce").to_numpy()
    if np.isnan(folds).any():
        raise ValueError("meta column strat_fold has missing or non-numeric values")
    return {
        "train": np.flatnonzero(np.isin(folds, PTBXL_TRAIN_FOLDS)),
        "val": np.flatnonzero(folds == PTBXL_VAL_FOLD),
        "test": np.flatnonzero(folds == PTBXL_TEST_FOLD),
    }


def _patient_codes(meta: pd.DataFrame) -> np.ndarray:
    """Integer patient of each record; a record without a patient_id is a patient of its own."""
    n = len(meta)
    if "patient_id" in meta.columns:
        patients = meta["patient_id"].fillna("").astype(str).str.strip().to_numpy()
    else:
        patients = np.full(n, "")
    unknown = patients == ""
    _, codes = np.unique(patients, return_inverse=True)
    if unknown.any():
        logger.warning("%d records have no patient_id; each is treated as its own patient", int(unknown.sum()))
        codes = np.unique(np.where(unknown, codes.max() + 1 + np.arange(n), codes), return_inverse=True)[1]
    return codes


def _patient_split(
    meta: pd.DataFrame, *, seed: int, val_fraction: float, test_fraction: float
) -> dict[str, np.ndarray]:
    if not (val_fraction >= 0.0 and test_fraction >= 0.0 and val_fraction + test_fraction < 1.0):
        raise ValueError(f"need 0 <= val_fraction, test_fraction and a sum < 1, got {val_fraction}, {test_fraction}")
    patient_of = _patient_codes(meta)  # (N,)
    n, n_patients = len(meta), int(patient_of.max(initial=-1)) + 1
    order = np.random.default_rng(seed).permutation(n_patients)
    records_per_patient = np.bincount(patient_of, minlength=n_patients)[order]
    done_before = np.cumsum(records_per_patient) - records_per_patient  # records assigned before each patient
    split_of_rank = np.where(
        done_before < test_fraction * n, 2, np.where(done_before < (test_fraction + val_fraction) * n, 1, 0)
    )
    split_of_patient = np.empty(n_patients, dtype=np.int64)
    split_of_patient[order] = split_of_rank
    split = split_of_patient[patient_of]
    return {name: np.flatnonzero(split == k) for k, name in enumerate(SPLITS)}


def split_indices(
    meta: pd.DataFrame,
    scheme: SplitScheme = "auto",
    *,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
) -> dict[str, np.ndarray]:
    """Sorted row indices of the train/val/test splits of a store's ``meta``.

    Args:
        meta: store metadata.
        scheme: ``"strat_fold"`` (PTB-XL folds 1–8 / 9 / 10), ``"patient"`` (seeded, patient-wise,
            about ``val_fraction`` and ``test_fraction`` of the records), or ``"auto"``: strat_fold
            where the column exists, else patient.
        seed: seed of the patient-wise split.
        val_fraction, test_fraction: target record fractions of the patient-wise split.

    Returns:
        ``{"train": idx, "val": idx, "test": idx}``.

    Raises:
        KeyError: ``"strat_fold"`` asked for but the column is missing.
        ValueError: unknown scheme or bad fractions.
    """
    if scheme == "auto":
        scheme = "strat_fold" if "strat_fold" in meta.columns else "patient"
        logger.info("split scheme: %s", scheme)
    if scheme == "strat_fold":
        if "strat_fold" not in meta.columns:
            raise KeyError("split scheme 'strat_fold' needs a strat_fold meta column (PTB-XL); use scheme='patient'")
        return _fold_split(meta)
    if scheme == "patient":
        return _patient_split(meta, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction)
    raise ValueError(f"unknown split scheme {scheme!r}; expected 'auto', 'strat_fold' or 'patient'")
