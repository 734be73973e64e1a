"""Built-in synthetic 12-lead ECG-report corpus (the embedded default; see docs/synthetic.md).

``generate_record(seed=, index=)`` gives one :class:`~melp.data.store.Record`; ``generate(n, seed=)``
a list of them; ``melp synth`` writes a store.
"""

from melp.data.synthetic.findings import LABEL_CODES, LABEL_NAMES, RHYTHM_CODES, Findings, sample_findings
from melp.data.synthetic.generator import SOURCE, SynthItem, generate, generate_record, process_item, record_id
from melp.data.synthetic.reports import parse_report, write_report

__all__ = [
    "LABEL_CODES",
    "LABEL_NAMES",
    "RHYTHM_CODES",
    "SOURCE",
    "Findings",
    "SynthItem",
    "generate",
    "generate_record",
    "parse_report",
    "process_item",
    "record_id",
    "sample_findings",
    "write_report",
]
