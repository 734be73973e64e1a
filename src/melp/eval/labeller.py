"""Rule-based ECG report labeller for the clinical score of report generation (issue "Evaluation", item 5).

Maps an English machine or cardiologist report (MIMIC-IV-ECG statements such as "Sinus rhythm. Left
axis deviation.", PTB-XL's English reports) to a set of finding codes named as in PTB-XL/CPSC and
the synthetic corpus (``SR``, ``AFIB``, ``1AVB``, ``CLBBB``, ``STE``, ...).

Rules:
- The text is lowercased, hyphens become spaces, whitespace is collapsed, and it is cut into
  sentences (``.`` followed by a space or the end, ``;``, new lines) and clauses (``,``, "but",
  "however", "although", "with").
- A finding is negated when a negation cue ("no", "not", "without", "absence of", "negative for",
  "free of") precedes it in the same clause, or when "is absent", "no longer present", "not seen",
  "resolved" follows it. Hedged statements ("possible", "probable", "cannot be excluded",
  "consider") count as present: the report states them.
- "incomplete" bundle-branch blocks are ``IRBBB``/``ILBBB``, never ``CRBBB``/``CLBBB``.
- "sinus rhythm with slow/fast rate" / "with sinus arrhythmia" is ``SBRAD``/``STACH``/``SARRH`` only; a prolonged PR interval is both
  ``LPR`` (the PTB-XL form statement) and ``1AVB`` (PR > 200 ms is first-degree AV block).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_PROLONGED_PR = (r"\bprolonged pr( interval)?\b", r"\bpr interval (is )?prolonged\b")
"""A prolonged PR interval: the PTB-XL form statement ``LPR`` and first-degree AV block ``1AVB`` alike."""

_PATTERNS: dict[str, tuple[str, ...]] = {
    "NORM": (
        r"\bnormal (ecg|ekg|electrocardiogram|tracing)\b",
        r"\bwithin normal limits\b",
        r"\bno definite pathology\b",
    ),
    "SR": (r"\bsinus rhythm\b(?! with (a )?((slow|fast|rapid) |(marked )?sinus arrhythmia))",),
    "SBRAD": (r"\bsinus bradycardia\b", r"\bsinus rhythm with (a )?slow (rate|ventricular rate)\b"),
    "STACH": (r"\bsinus tachycardia\b", r"\bsinus rhythm with (a )?(rapid|fast) (rate|ventricular rate)\b"),
    "SARRH": (r"\bsinus arrhythmia\b",),
    "AFIB": (r"\batrial fibrillation\b", r"\bafib\b", r"\ba fib\b"),
    "AFLT": (r"\batrial flutter\b", r"\bflutter waves\b"),
    "PVC": (
        r"\bventricular (premature|ectopic|extra) ?(complex|complexes|beats?|contractions?|systoles?)\b",
        r"\bpremature ventricular (complex|complexes|contractions?|beats?)\b",
        r"\bpvcs?\b",
        r"\bventricular extrasystoles?\b",
    ),
    "PAC": (
        r"\b(atrial|supraventricular) (premature|ectopic) (complex|complexes|beats?|contractions?)\b",
        r"\bpremature (atrial|supraventricular) (complex|complexes|contractions?|beats?)\b",
        r"\bpacs?\b",
        r"\b(atrial|supraventricular) extrasystoles?\b",
    ),
    "1AVB": (
        r"\b(1st|first) degree (a ?v|atrioventricular|av) (block|conduction delay)\b",
        r"\ba ?v block,? (1st|first) degree\b",
        *_PROLONGED_PR,
    ),
    "2AVB": (r"\b(2nd|second) degree (a ?v|atrioventricular|av) block\b", r"\bmobitz\b", r"\bwenckebach\b"),
    "3AVB": (r"\b(3rd|third) degree (a ?v|atrioventricular|av) block\b", r"\bcomplete (heart|a ?v|av) block\b"),
    "LPR": (*_PROLONGED_PR, r"\blong pr interval\b"),
    "CLBBB": (r"(?<!incomplete )\bleft bundle branch block\b", r"(?<!incomplete )\blbbb\b"),
    "CRBBB": (r"(?<!incomplete )\bright bundle branch block\b", r"(?<!incomplete )\brbbb\b"),
    "ILBBB": (r"\bincomplete (left bundle branch block|lbbb)\b",),
    "IRBBB": (r"\bincomplete (right bundle branch block|rbbb)\b",),
    "LAFB": (r"\bleft anterior (fascicular block|hemiblock)\b", r"\blafb\b"),
    "LPFB": (r"\bleft posterior (fascicular block|hemiblock)\b", r"\blpfb\b"),
    "IVCD": (
        r"\bintraventricular conduction (delay|defect|disturbance)\b",
        r"\bnon ?specific intraventricular (block|delay)\b",
        r"\biv conduction (delay|defect)\b",
    ),
    "WPW": (r"\bwolff parkinson white\b", r"\bwpw\b", r"\bpre ?excitation\b"),
    "LVH": (r"\bleft ventricular hypertrophy\b", r"\blvh\b"),
    "RVH": (r"\bright ventricular hypertrophy\b", r"\brvh\b"),
    "LAO/LAE": (r"\bleft atrial (enlargement|abnormality|overload|hypertrophy)\b",),
    "RAO/RAE": (r"\bright atrial (enlargement|abnormality|overload|hypertrophy)\b",),
    "STE": (r"\bst (segment )?elevations?\b", r"\bst segments? (are |is )?(slightly |markedly |mildly )?elevated\b"),
    "STD": (r"\bst (segment )?depressions?\b", r"\bst segments? (are |is )?(slightly |markedly |mildly )?depressed\b"),
    "INVT": (
        r"\bt waves? inversions?\b",
        r"\binverted t waves?\b",
        r"\bt waves? (are |is )?(slightly |deeply )?inverted\b",
        r"\bnegative t waves?\b",
    ),
    "LOWT": (
        r"\bt waves? (are |is )?(low|flat)",
        r"\bt waves? flattening\b",
        r"\bflat(tened)? t waves?\b",
        r"\blow amplitude t waves?\b",
    ),
    "NST": (
        r"\bnon ?specific( \w+)? st( t)?( wave)? (changes?|abnormality|abnormalities)\b",
        r"\bminor( \w+)? st( t)?( wave)? changes?\b",
        r"\bnon ?specific st (segment )?(depression|elevation)",
    ),
    "STTC": (r"\bst t( wave)? (changes?|abnormality|abnormalities)\b",),
    "TAB": (r"\bt wave (changes?|abnormality|abnormalities)\b",),
    "LVOLT": (r"\blow (qrs )?voltages?\b", r"\blow (limb|chest|precordial) lead voltages?\b"),
    "HVOLT": (r"\bhigh (qrs )?voltages?\b", r"\bvoltages (are|is) high\b"),
    "LAD": (r"\bleft axis deviation\b", r"\bleftward axis\b"),
    "RAD": (r"\bright axis deviation\b", r"\brightward axis\b"),
    "LNGQT": (
        r"\b(prolonged|long) qtc?( interval)?\b",
        r"\bqtc? (interval )?(is )?prolonged\b",
        r"\bqtc? prolongation\b",
    ),
    "IMI": (r"\binferior (wall )?(myocardial )?infarct(ion)?\b", r"\binferior mi\b"),
    "AMI": (
        r"\b(anterior|anteroseptal|septal|anterolateral) (wall )?(myocardial )?infarct(ion)?\b",
        r"\b(anterior|anteroseptal) mi\b",
    ),
    "LMI": (r"\b(high )?lateral (wall )?(myocardial )?infarct(ion)?\b",),
    "MI": (r"\binfarct(ion|s)?\b",),
    "QWAVE": (r"\bq waves?\b", r"\bqs complex(es)?\b"),
    "ISC": (r"\bischa?emi(a|c)\b",),
    "PACE": (r"\bpaced rhythm\b", r"\b(atrial|ventricular|dual chamber) pac(ed|ing)\b", r"\bpacemaker\b"),
    "SVTAC": (r"\bsupraventricular tachycardia\b", r"\bsvt\b"),
    "PSVT": (r"\bparoxysmal (supraventricular tachycardia|svt)\b",),
    "BIGU": (r"\bbigemin(y|al)\b",),
    "TRIGU": (r"\btrigemin(y|al)\b",),
    "DIG": (r"\bdigitalis\b", r"\bdigoxin effect\b"),
}

CODES: tuple[str, ...] = tuple(_PATTERNS)
"""Every code the labeller can return."""

_COMPILED = {code: [re.compile(p) for p in patterns] for code, patterns in _PATTERNS.items()}
_SENTENCE_SPLIT = re.compile(r"\.(?=\s|$)|[;\n]")
_CLAUSE_BOUNDARY = re.compile(r",|\b(but|however|although|though|with|while|whereas)\b")
_PRE_NEGATION = re.compile(r"\b(no|not|without|absence of|absent|negative for|free of|resolution of)\b")
_POST_NEGATION = re.compile(
    r"^\s*(is |are |has |have )?(no longer (present|seen)|absent|not (present|seen)|resolved)\b"
)


def normalise_report(text: str) -> str:
    """Lowercase, hyphens (and PTB-XL's ``st.t``) to spaces, collapsed whitespace."""
    text = text.lower().replace("\u2013", " ").replace("-", " ")
    text = re.sub(r"\bst\.t\b", "st t", text)
    return " ".join(text.split())


def _negated(sentence: str, start: int, end: int) -> bool:
    before = sentence[:start]
    boundaries = list(_CLAUSE_BOUNDARY.finditer(before))
    clause = before[boundaries[-1].end() :] if boundaries else before
    if _PRE_NEGATION.search(clause):
        return True
    return bool(_POST_NEGATION.match(sentence[end:]))


def label_report(text: str) -> set[str]:
    """The set of finding codes a report states (negated findings excluded)."""
    if not isinstance(text, str):
        raise TypeError(f"a report must be a string, got {type(text).__name__}")
    found: set[str] = set()
    for sentence in _SENTENCE_SPLIT.split(normalise_report(text)):
        for code, patterns in _COMPILED.items():
            for pattern in patterns:
                if any(not _negated(sentence, m.start(), m.end()) for m in pattern.finditer(sentence)):
                    found.add(code)
                    break
    return found


def label_reports(texts: Iterable[str]) -> list[set[str]]:
    """:func:`label_report` of each text."""
    return [label_report(t) for t in texts]
