"""The standard 12-lead order and case-insensitive lead-name aliases.

Every store holds leads in :data:`STANDARD_LEADS` order. Readers reorder by *name*, never by
position (MIMIC-IV-ECG, for instance, writes aVF before aVL).
"""

from __future__ import annotations

from collections.abc import Sequence

STANDARD_LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
N_LEADS = len(STANDARD_LEADS)

_ALIASES: dict[str, str] = {name.lower(): name for name in STANDARD_LEADS}
_ALIASES.update({"di": "I", "dii": "II", "diii": "III"})
# prefixes that clinical formats put before the lead name: HL7 aECG / IEEE 11073 MDC codes
# (MDC_ECG_LEAD_AVR), DICOM code meanings ("Lead I (Einthoven)"), EDF labels ("ECG V1", "EKG II")
_PREFIXES = ("mdc_ecg_lead_", "lead_", "lead ", "ecg ", "ekg ", "ecg_", "ekg_", "ecg-", "ekg-")


def canonical_lead_name(name: str) -> str | None:
    """The standard spelling of ``name``, or None if it is not one of the 12 standard leads.

    Case-insensitive, and tolerant of the spellings of clinical formats: ``"AVL"``, ``"avl"``,
    ``"MDC_ECG_LEAD_AVL"``, ``"Lead aVL"``, ``"ECG aVL"`` → ``"aVL"``; ``"Lead I (Einthoven)"`` → ``"I"``.
    Inverted or non-standard leads (``"-aVR"``, Frank ``vx``, ``V7``) give None.
    """
    key = name.strip().lower()
    if "(" in key:
        key = key[: key.index("(")].strip()
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix) :].strip()
            break
    return _ALIASES.get(key)


def lead_permutation(names: Sequence[str]) -> list[int]:
    """Indices into ``names`` that give the 12 standard leads in :data:`STANDARD_LEADS` order.

    Raises:
        ValueError: a standard lead is missing or present twice; the message names it. Extra,
            non-standard leads (e.g. Frank leads vx/vy/vz) are ignored.
    """
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        canon = canonical_lead_name(name)
        if canon is None:
            continue
        if canon in index:
            raise ValueError(f"lead {canon} appears twice in {list(names)}")
        index[canon] = i
    missing = [lead for lead in STANDARD_LEADS if lead not in index]
    if missing:
        raise ValueError(f"missing lead(s) {missing} in {list(names)}")
    return [index[lead] for lead in STANDARD_LEADS]
