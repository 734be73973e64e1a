"""Installed, not only checked out (issue 13, item 6): the wheel, installed in a fresh venv, runs a micro demo
and `melp predict` from an empty folder (presets and resources ship inside the package)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], cwd: Path, timeout: float = 900) -> str:  # a hang guard, not a speed check
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done.stdout + done.stderr


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_the_micro_demo_and_predict(tmp_path: Path) -> None:
    # build from a copy of the package sources, so the working tree gets no build/ or dist/ folder
    source = tmp_path / "source"
    shutil.copytree(REPO / "src" / "melp", source / "src" / "melp", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    pip = [sys.executable, "-m", "pip"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), "."], cwd=source)
    wheel = next((tmp_path / "dist").glob("melp-*.whl"))
    # a fresh venv that sees the already-installed dependencies (not melp: the editable install's
    # finder is a .pth inside that folder, which a path line in our .pth does not run)
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    site = Path(
        _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path).strip()
    )
    (site / "_melp_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([*pip, "--python", str(python), "install", "--no-deps", "-q", str(wheel)], cwd=tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    where = _run([str(python), "-c", "import melp; print(melp.__file__)"], cwd=empty)
    assert str(venv) in where, where
    melp = str(venv / "bin" / "melp")
    _run([melp, "demo", "--preset", "micro", "--out", "demo", "--n", "20", "--seconds", "5", "--text-steps", "2",
          "--steps", "2"], cwd=empty)  # fmt: skip
    assert (empty / "demo" / "report.html").is_file()
    np.save(empty / "ecg.npy", np.random.default_rng(0).normal(size=(12, 500)))
    out = _run([melp, "predict", "ecg.npy", "--fs", "100", "--model", "demo/run/final", "--no-report",
                "--out", "p.json"], cwd=empty)  # fmt: skip
    assert "ecg.npy" in out and (empty / "p.json").is_file()
