"""Report-generation metrics (issue "Evaluation", item 5): BLEU-4, ROUGE-L and a label-level clinical score.

- BLEU-4: sacrebleu's corpus BLEU (13a tokenisation, exponential smoothing, one reference per record),
  reported on a 0-1 scale. Per-report n-gram statistics are computed once and summed over each
  bootstrap resample (``BLEU.compute_bleu``), which equals ``sacrebleu.corpus_bleu`` on the resample.
- ROUGE-L: ``rouge_score`` F-measure per report, averaged.
- Clinical score: the :mod:`melp.eval.labeller` findings of each generated report against those of its
  reference. Micro precision/recall/F1 pool the true/false positives of every report; macro values
  average the per-finding precision/recall/F1 over the findings present in at least one reference
  (findings that appear only in generated reports count as false positives in the micro score and
  are listed). Reports with no finding on either side add nothing to the clinical counts.

All of them get bootstrap intervals over records (same seed protocol as :mod:`melp.eval.bootstrap`).
The macro scores average over one fixed set of findings, those with a reference in the whole test
set, in the point estimate and in every resample alike; as for a classification class, a resample
in which one of them has no reference is rejected and redrawn (counted in the notes), so the
macro intervals are conditional on every averaged finding being present. (Letting each resample
average over the findings it happens to contain shifts the intervals: dropping a rare finding
with recall 0 raises the macro recall, so the point estimate could fall outside its own interval.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU

from melp.eval.bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED, BootstrapResult, bootstrap
from melp.eval.labeller import label_report


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def _prf(tp: float, fp: float, fn: float) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp > 0 else 0.0
    r = tp / (tp + fn) if tp + fn > 0 else 0.0
    return p, r, _f1(p, r)


def clinical_counts(generated: Sequence[set[str]], reference: Sequence[set[str]]) -> tuple[list[str], np.ndarray]:
    """Per-record, per-finding TP/FP/FN counts: codes (K,) and an array (N, K, 3)."""
    codes = sorted(set().union(*generated, *reference)) if len(generated) else []
    counts = np.zeros((len(generated), len(codes), 3), dtype=np.int64)
    index = {c: k for k, c in enumerate(codes)}
    for i, (g, r) in enumerate(zip(generated, reference)):
        for c in g & r:
            counts[i, index[c], 0] = 1
        for c in g - r:
            counts[i, index[c], 1] = 1
        for c in r - g:
            counts[i, index[c], 2] = 1
    return codes, counts


def findings_in_reference(counts: np.ndarray) -> np.ndarray:
    """Which findings (K,) have at least one reference (a TP or FN) in :func:`clinical_counts`' (N, K, 3)."""
    return counts[:, :, [0, 2]].sum(axis=(0, 2)) > 0


def clinical_scores(
    codes: Sequence[str], counts: np.ndarray, *, macro_over: np.ndarray | None = None
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Micro/macro precision, recall, F1 from :func:`clinical_counts`, and per-finding values.

    Args:
        codes: the finding codes (K,).
        counts: per-record TP/FP/FN (N, K, 3).
        macro_over: the findings (K,) bool the macro scores average over; default
            :func:`findings_in_reference` of ``counts``. Pass the full test set's to score a resample.
    """
    in_ref = findings_in_reference(counts) if macro_over is None else np.asarray(macro_over, dtype=bool)
    if in_ref.shape != (len(codes),):
        raise ValueError(f"macro_over must have one entry per finding ({len(codes)}), got shape {in_ref.shape}")
    total = counts.sum(axis=0)  # (K, 3)
    micro_p, micro_r, micro_f1 = _prf(*total.sum(axis=0).tolist())
    per_code = {}
    for k, code in enumerate(codes):
        tp, fp, fn = total[k].tolist()
        p, r, f = _prf(tp, fp, fn)
        per_code[code] = {"precision": p, "recall": r, "f1": f, "n_ref": int(tp + fn), "n_gen": int(tp + fp)}
    averaged = [per_code[code] for code, keep in zip(codes, in_ref) if keep]
    macro = {
        f"clinical_macro_{m}": float(np.mean([v[m] for v in averaged])) if averaged else 0.0
        for m in ("precision", "recall", "f1")
    }
    return {
        "clinical_micro_precision": micro_p,
        "clinical_micro_recall": micro_r,
        "clinical_micro_f1": micro_f1,
        **macro,
    }, per_code


class CorpusBLEU:
    """Corpus BLEU-4 of any subset of (generated, reference) pairs from per-pair sacrebleu statistics."""

    def __init__(self, generated: Sequence[str], references: Sequence[str]) -> None:
        self.bleu = BLEU()
        stats = [self.bleu.corpus_score([g], [[r]]) for g, r in zip(generated, references)]
        self.correct = np.array([s.counts for s in stats], dtype=np.int64)  # (N, 4)
        self.total = np.array([s.totals for s in stats], dtype=np.int64)  # (N, 4)
        self.sys_len = np.array([s.sys_len for s in stats], dtype=np.int64)  # (N,)
        self.ref_len = np.array([s.ref_len for s in stats], dtype=np.int64)  # (N,)

    def __call__(self, idx: np.ndarray) -> float:
        """BLEU-4 on a 0-1 scale of the pairs ``idx`` (repeats allowed)."""
        score = BLEU.compute_bleu(
            correct=self.correct[idx].sum(axis=0).tolist(),
            total=self.total[idx].sum(axis=0).tolist(),
            sys_len=int(self.sys_len[idx].sum()),
            ref_len=int(self.ref_len[idx].sum()),
            smooth_method=self.bleu.smooth_method,
            smooth_value=self.bleu.smooth_value,
        )
        return float(score.score) / 100.0


def generation_metrics(
    generated: Sequence[str],
    references: Sequence[str],
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> tuple[dict[str, float], dict[str, dict[str, float]], BootstrapResult]:
    """BLEU-4, ROUGE-L and clinical scores, per-finding clinical scores, and their bootstrap intervals.

    The macro clinical intervals come from their own resamples (same seed), which are redrawn when a
    finding of the macro average has no reference; ``n_rejected`` and the notes count those.
    """
    if len(generated) != len(references):
        raise ValueError(f"{len(generated)} generated reports for {len(references)} references")
    if not generated:
        raise ValueError("no reports to score")
    gen, ref = list(generated), list(references)
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    rouge = np.array([scorer.score(r, g)["rougeL"].fmeasure for g, r in zip(gen, ref)])
    codes, counts = clinical_counts([label_report(g) for g in gen], [label_report(r) for r in ref])
    bleu = CorpusBLEU(gen, ref)
    in_ref = findings_in_reference(counts)  # (K,) the macro scores' findings, fixed by the whole test set

    def clinical(idx: np.ndarray, *, macro: bool) -> dict[str, float]:
        scores, _ = clinical_scores(codes, counts[idx], macro_over=in_ref)
        return {k: v for k, v in scores.items() if k.startswith("clinical_macro_") == macro}

    def overall(idx: np.ndarray) -> dict[str, float]:
        return {"bleu4": bleu(idx), "rouge_l": float(rouge[idx].mean()), **clinical(idx, macro=False)}

    def macro_defined(idx: np.ndarray) -> bool:
        return bool(findings_in_reference(counts[idx])[in_ref].all())

    everything = np.arange(len(gen))
    metrics = {**overall(everything), **clinical(everything, macro=True)}
    _, per_code = clinical_scores(codes, counts)
    boot = bootstrap(len(gen), overall, n_resamples=n_resamples, seed=seed)
    if n_resamples <= 0:
        return metrics, per_code, boot
    macro_boot = bootstrap(
        len(gen),
        lambda idx: clinical(idx, macro=True),
        n_resamples=n_resamples,
        seed=seed,
        valid=macro_defined,
        rejection="a finding of the macro average had no reference",
    )
    merged = replace(
        boot,
        ci95={**boot.ci95, **macro_boot.ci95},
        n_rejected=macro_boot.n_rejected,
        notes=boot.notes + [f"clinical_macro_*: {note}" for note in macro_boot.notes],
    )
    return metrics, per_code, merged
