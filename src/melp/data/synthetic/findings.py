"""Label codes of the synthetic corpus and a sampler of clinically coherent finding combinations.

Codes follow the PTB-XL/CPSC names (``SR``, ``AFIB``, ``CLBBB``...) so that zero-shot prompts and
label sets carry over to real data. Every record has exactly one rhythm code; the other findings
are drawn with the dependencies seen in practice (see :func:`sample_findings`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RHYTHM_CODES: tuple[str, ...] = ("SR", "SBRAD", "STACH", "SARRH", "AFIB", "AFLT")
SINUS_CODES: tuple[str, ...] = ("SR", "SBRAD", "STACH", "SARRH")
LABEL_CODES: tuple[str, ...] = (
    *RHYTHM_CODES,
    "PVC",
    "PAC",
    "1AVB",
    "CLBBB",
    "CRBBB",
    "LVH",
    "STE",
    "STD",
    "INVT",
    "LVOLT",
    "LAD",
    "RAD",
    "LNGQT",
    "NORM",
)

LABEL_NAMES: dict[str, str] = {
    "SR": "sinus rhythm",
    "SBRAD": "sinus bradycardia",
    "STACH": "sinus tachycardia",
    "SARRH": "sinus arrhythmia",
    "AFIB": "atrial fibrillation",
    "AFLT": "atrial flutter",
    "PVC": "premature ventricular contractions",
    "PAC": "premature atrial contractions",
    "1AVB": "first-degree AV block",
    "CLBBB": "complete left bundle branch block",
    "CRBBB": "complete right bundle branch block",
    "LVH": "left ventricular hypertrophy",
    "STE": "ST elevation",
    "STD": "ST depression",
    "INVT": "T-wave inversion",
    "LVOLT": "low QRS voltage",
    "LAD": "left axis deviation",
    "RAD": "right axis deviation",
    "LNGQT": "prolonged QT interval",
    "NORM": "normal ECG",
}

# Minor findings give "Borderline ECG"; any other abnormal finding gives "Abnormal ECG".
BORDERLINE_CODES: frozenset[str] = frozenset({"SBRAD", "SARRH", "PAC", "1AVB", "LAD", "LVOLT"})

_RHYTHM_P = {"SR": 0.44, "SBRAD": 0.12, "STACH": 0.12, "SARRH": 0.08, "AFIB": 0.16, "AFLT": 0.08}


@dataclass(frozen=True)
class Findings:
    """The findings of one record.

    Attributes:
        codes: label codes in :data:`LABEL_CODES` order (exactly one rhythm code).
        ste_territory: ``anterior``, ``inferior`` or ``lateral`` where ``STE`` is present, else ''.
        invt_territory: ``anterior`` or ``lateral`` where ``INVT`` is present, else ''.
    """

    codes: tuple[str, ...]
    ste_territory: str = ""
    invt_territory: str = ""

    @property
    def rhythm(self) -> str:
        return next(c for c in self.codes if c in RHYTHM_CODES)

    def __contains__(self, code: object) -> bool:
        return code in self.codes


def _pick(rng: np.random.Generator, options: dict[str, float]) -> str:
    """One key of ``options`` drawn with the given probabilities (the remainder is "none": '')."""
    u = rng.random()
    for key, p in options.items():
        if u < p:
            return key
        u -= p
    return ""


def sample_findings(rng: np.random.Generator) -> Findings:
    """Draw a clinically coherent set of findings.

    Rules: exactly one rhythm; PAC and first-degree AV block only with a sinus rhythm (a PR
    interval needs conducted P waves), and no first-degree block in sinus tachycardia; LBBB and
    RBBB exclusive; LBBB carries its own discordant ST-T, so no separate ST/T label with it; LVH
    and low voltage exclusive; no voltage criteria for LVH in a bundle-branch block and no LVH
    with right axis deviation; ST elevation and depression exclusive; left and right axis
    deviation exclusive (LAD is common with LBBB); LVH raises the odds of a strain pattern (ST
    depression, T inversion); ``NORM`` exactly when the rhythm is sinus rhythm and nothing else
    is found.
    """
    rhythm = _pick(rng, _RHYTHM_P) or "SR"
    sinus = rhythm in SINUS_CODES
    codes = {rhythm}
    if rng.random() < 0.10:
        codes.add("PVC")
    if sinus and rng.random() < 0.10:
        codes.add("PAC")
    if sinus and rhythm != "STACH" and rng.random() < 0.10:
        codes.add("1AVB")
    bbb = _pick(rng, {"CLBBB": 0.07, "CRBBB": 0.07})
    if bbb:
        codes.add(bbb)
    voltage = _pick(rng, {"LVH": 0.0 if bbb else 0.11, "LVOLT": 0.07})
    if voltage:
        codes.add(voltage)
    ste_territory = invt_territory = ""
    if bbb != "CLBBB":
        strain = 0.15 if voltage == "LVH" else 0.0
        st = _pick(rng, {"STE": 0.08, "STD": 0.08 + strain})
        if st:
            codes.add(st)
        if st == "STE":
            ste_territory = str(rng.choice(["anterior", "inferior", "lateral"]))
        if rng.random() < 0.10 + strain:
            codes.add("INVT")
            invt_territory = "lateral" if bbb == "CRBBB" else str(rng.choice(["anterior", "lateral"]))
    axis = _pick(rng, {"LAD": 0.25 if bbb == "CLBBB" else 0.08, "RAD": 0.0 if voltage == "LVH" else 0.06})
    if axis:
        codes.add(axis)
    if rng.random() < 0.07:
        codes.add("LNGQT")
    if codes == {"SR"}:
        codes.add("NORM")
    ordered = tuple(c for c in LABEL_CODES if c in codes)
    return Findings(codes=ordered, ste_territory=ste_territory, invt_territory=invt_territory)


def coherence_errors(codes: tuple[str, ...] | list[str]) -> list[str]:
    """The rules of :func:`sample_findings` that ``codes`` breaks (empty when coherent)."""
    s = set(codes)
    errors = []
    unknown = s - set(LABEL_CODES)
    if unknown:
        errors.append(f"unknown codes {sorted(unknown)}")
    n_rhythm = len(s & set(RHYTHM_CODES))
    if n_rhythm != 1:
        errors.append(f"{n_rhythm} rhythm codes, expected exactly 1")
    pairs = [("CLBBB", "CRBBB"), ("LVH", "LVOLT"), ("STE", "STD"), ("LAD", "RAD"), ("STACH", "1AVB")]
    pairs += [(a, b) for a in ("AFIB", "AFLT") for b in ("1AVB", "PAC")]
    pairs += [("CLBBB", b) for b in ("STE", "STD", "INVT")] + [("LVH", b) for b in ("CLBBB", "CRBBB", "RAD")]
    errors += [f"{a} with {b}" for a, b in pairs if a in s and b in s]
    if ("NORM" in s) != (s - {"NORM"} == {"SR"}):
        errors.append("NORM must be present exactly when the only other finding is SR")
    return errors
