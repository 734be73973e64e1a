"""Smoke test of ``melp demo`` at micro scale: every artefact exists and the report quotes the results JSON."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from melp.cli.demo import evaluations, make_plan
from melp.cli.main import build_parser, main
from melp.report import format_cell


def _plan(tmp_path: Path, *extra: str):
    args = build_parser().parse_args(["demo", "--out", str(tmp_path / "demo"), "--preset", "micro", *extra])
    return make_plan(args)


def test_plan_resolves_sizes_and_stores(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "--n", "200", "--seconds", "5", "optim.lr=0.01")
    assert (plan.n_train, plan.n_val, plan.n_test) == (200, 40, 40)
    assert plan.stores["test"] == tmp_path / "demo" / "data" / "test"
    assert plan.fs == 100  # the preset's model.fs: the stores need no resampling
    assert plan.overrides == ["model.seconds=5", "optim.lr=0.01"]  # user overrides come last and win
    assert plan.config.name == "micro.yaml"
    stems = [stem for _, _, stem, _ in evaluations(plan)]
    assert (
        len(stems) == len(set(stems)) == 19
    )  # 2 models × (zero-shot + 2 × 3 probes + retrieval + grounding) + generation
    assert {"melp_zeroshot", "random_zeroshot", "melp_probe_0.01", "random_probe_1", "melp_logreg_0.1"} <= set(stems)
    assert "melp_generate" in stems
    assert (_plan(tmp_path).n_val, _plan(tmp_path, "--n-eval", "30").n_test) == (60, 30)  # the preset's, or given


def test_plan_rejects_partial_store_sets(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="all three"):
        _plan(tmp_path, "--train", str(tmp_path))


@pytest.mark.slow
def test_micro_demo_end_to_end(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "demo"
    sizes = ["--n", "100", "--seconds", "5", "--text-steps", "5", "--steps", "8"]
    argv = ["demo", "--out", str(out), "--preset", "micro", *sizes]
    assert main(argv) == 0
    plan = _plan(tmp_path, *sizes)
    for store in plan.stores.values():
        assert (store / "manifest.json").is_file()
    assert (plan.text_model / "config.json").is_file()
    assert (plan.model_dir / "config.json").is_file() and (plan.run_dir / "metrics.jsonl").is_file()
    md, html = (out / "report.md").read_text(), (out / "report.html").read_text()
    for evaluation, _, stem, _ in evaluations(plan):
        result = json.loads((plan.eval_dir / f"{stem}.json").read_text())
        cis = result.get("ci95") or {}
        for name, value in result["metrics"].items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                cell = format_cell(value, cis.get(name))
                assert cell in md and cell in html, (evaluation, name, cell)
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', html)) == 4  # curves, ROC, ECG paper, alignment
    assert "reference report" in html and "generated report" in md
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="melp.cli.demo"):
        assert main(argv) == 0  # a second run resumes: every step is found done
    skipped = [r.getMessage() for r in caplog.records if "already done" in r.getMessage()]
    assert len(skipped) == 3 + 2 + len(evaluations(plan))
