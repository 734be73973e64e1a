"""Machine-style reports for the synthetic corpus, in the manner of MIMIC-IV-ECG (melp-spec §4.1).

A report is one sentence per finding, each chosen from several phrasings, in a varied order
(rhythm usually first), usually closed by a summary line ("Borderline ECG.", "Abnormal ECG.");
``NORM`` is itself the sentence "Normal ECG." (or a synonym). Every sentence ends with a full stop
and none contains one, so sentence splitting is unambiguous. :func:`parse_report` inverts
:func:`write_report` exactly.
"""

from __future__ import annotations

import numpy as np

from melp.data.synthetic.findings import BORDERLINE_CODES, LABEL_CODES, RHYTHM_CODES, Findings

_TERRITORY_WORDS = {"anterior": "Anterior", "inferior": "Inferior", "lateral": "Lateral"}

PHRASES: dict[str, tuple[str, ...]] = {
    "SR": ("Sinus rhythm", "Normal sinus rhythm", "Regular sinus rhythm"),
    "SBRAD": ("Sinus bradycardia", "Sinus rhythm with slow rate", "Sinus bradycardia, rate below 60"),
    "STACH": ("Sinus tachycardia", "Sinus rhythm with fast rate", "Sinus tachycardia, rate above 100"),
    "SARRH": ("Sinus arrhythmia", "Marked sinus arrhythmia", "Sinus rhythm with marked sinus arrhythmia"),
    "AFIB": (
        "Atrial fibrillation",
        "Atrial fibrillation with irregular ventricular response",
        "Irregularly irregular rhythm, atrial fibrillation",
    ),
    "AFLT": ("Atrial flutter", "Probable atrial flutter", "Atrial flutter with flutter waves"),
    "PVC": ("Premature ventricular contractions", "Ventricular premature complexes", "Occasional PVCs"),
    "PAC": ("Premature atrial contractions", "Atrial premature complexes", "Occasional PACs"),
    "1AVB": ("1st degree A-V block", "First degree AV block", "Prolonged PR interval"),
    "CLBBB": ("Left bundle branch block", "Complete left bundle branch block", "LBBB"),
    "CRBBB": ("Right bundle branch block", "Complete right bundle branch block", "RBBB"),
    "LVH": (
        "Left ventricular hypertrophy",
        "LVH by voltage criteria",
        "Voltage criteria for left ventricular hypertrophy",
    ),
    "STE": (
        "ST elevation",
        "ST segment elevation, consider acute injury",
        "{T} ST elevation",
        "ST elevation in {t} leads",
    ),
    "STD": ("ST depression", "ST segment depression", "Diffuse ST depression"),
    "INVT": ("T wave inversion", "Inverted T waves", "{T} T wave inversion", "T wave inversion in {t} leads"),
    "LVOLT": ("Low QRS voltages", "Low voltage QRS", "Low QRS voltage in limb leads"),
    "LAD": ("Left axis deviation", "Leftward axis", "Abnormal left axis deviation"),
    "RAD": ("Right axis deviation", "Rightward axis", "Abnormal right axis deviation"),
    "LNGQT": ("Prolonged QT interval", "Long QT interval", "QT prolongation"),
    "NORM": ("Normal ECG", "Within normal limits", "Normal tracing"),
}
SUMMARY_PHRASES: dict[str, str] = {"borderline": "Borderline ECG", "abnormal": "Abnormal ECG"}


def _expand(phrase: str) -> list[str]:
    """All concrete sentences of a phrasing template (territory placeholders filled)."""
    if "{" not in phrase:
        return [phrase]
    return [phrase.format(T=word, t=word.lower()) for word in _TERRITORY_WORDS.values()]


def _sentence_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for code, phrases in PHRASES.items():
        for phrase in phrases:
            for sentence in _expand(phrase):
                key = sentence.lower()
                if key in table:
                    raise RuntimeError(f"phrase {sentence!r} is ambiguous ({table[key]} and {code})")
                table[key] = code
    return table


_SENTENCE_TO_CODE = _sentence_table()
_SUMMARY_KEYS = frozenset(s.lower() for s in SUMMARY_PHRASES.values())


def _sentence(code: str, f: Findings, rng: np.random.Generator) -> str:
    phrases = PHRASES[code]
    territory = {"STE": f.ste_territory, "INVT": f.invt_territory}.get(code, "")
    if not territory:
        phrases = tuple(p for p in phrases if "{" not in p)
    phrase = str(rng.choice(phrases))
    word = _TERRITORY_WORDS.get(territory, "")
    return phrase.format(T=word, t=word.lower())


def summary_line(f: Findings) -> str | None:
    """The summary sentence a machine adds: None for a normal ECG, else borderline or abnormal."""
    if "NORM" in f:
        return None
    others = set(f.codes) - {"SR"}
    return SUMMARY_PHRASES["borderline" if others <= BORDERLINE_CODES else "abnormal"]


def write_report(f: Findings, rng: np.random.Generator) -> str:
    """One report for the findings: one sentence per code, varied phrasing and order, summary last."""
    rhythm = f.rhythm
    others = [c for c in f.codes if c not in (rhythm, "NORM")]
    if rng.random() < 0.35:
        rng.shuffle(others)
    ordered = [rhythm, *others]
    if rng.random() < 0.1 and others:
        ordered = [*others, rhythm]
    sentences = [_sentence(c, f, rng) for c in ordered]
    if "NORM" in f:
        sentences.append(_sentence("NORM", f, rng))
    summary = summary_line(f)
    if summary is not None and rng.random() < 0.9:
        sentences.append(summary)
    return " ".join(s + "." for s in sentences)


def split_sentences(report: str) -> list[str]:
    """The sentences of a report (without their full stops)."""
    return [s.strip() for s in report.strip().split(".") if s.strip()]


def sentence_code(sentence: str) -> str | None:
    """The label code a synthetic report sentence states (case-insensitive, full stop optional), else None.

    Summary lines ("Abnormal ECG") and sentences this module does not write give None.
    """
    return _SENTENCE_TO_CODE.get(sentence.strip().rstrip(".").strip().lower())


def parse_report(report: str) -> list[str]:
    """Label codes stated by a synthetic report, in :data:`LABEL_CODES` order.

    Raises:
        ValueError: a sentence is not one this module writes, or a finding is stated twice.
    """
    codes: list[str] = []
    for sentence in split_sentences(report):
        key = sentence.lower()
        if key in _SUMMARY_KEYS:
            continue
        if key not in _SENTENCE_TO_CODE:
            raise ValueError(f"unknown sentence {sentence!r} in synthetic report {report!r}")
        code = _SENTENCE_TO_CODE[key]
        if code in codes:
            raise ValueError(f"finding {code} stated twice in {report!r}")
        codes.append(code)
    if sum(c in RHYTHM_CODES for c in codes) != 1:
        raise ValueError(f"expected exactly one rhythm statement in {report!r}")
    return [c for c in LABEL_CODES if c in codes]
