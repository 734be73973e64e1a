"""What every benchmark records besides its numbers: the machine it ran on and the results JSON.

Each ``benchmarks/bench_<name>.py`` writes ``benchmarks/results/bench_<name>.json`` through
:func:`write_result`, with the machine described by :func:`machine_info`.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def machine_info(**extra: Any) -> dict[str, Any]:
    """Platform, CPU model and CPU count, followed by the benchmark's own ``extra`` entries."""
    return {"platform": platform.platform(), "cpu": cpu_name(), "cpu_count": os.cpu_count(), **extra}


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """Write ``{"benchmark": name, "command": <how it was run>, **payload}`` to results/<name>.json.

    Args:
        name: The benchmark's module name, e.g. ``"bench_embed"``.
        payload: The rest of the record (machine, protocol, results, ...), in the order to write.

    Returns:
        The path written.
    """
    record = {
        "benchmark": name,
        "command": " ".join([Path(sys.executable).name, "-m", f"benchmarks.{name}", *sys.argv[1:]]),
        **payload,
    }
    path = RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {path}")
    return path
