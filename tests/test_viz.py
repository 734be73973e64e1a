"""ECG-paper figures: they render to PNG, with one axes for the paper plus one for an overlay band."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from melp.cli.main import main as melp_main
from melp.data.synthetic import generate_record
from melp.viz import MM_PER_MV, MM_PER_S, plot_ecg

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def record():
    return generate_record(seed=0, index=1)


@pytest.mark.parametrize("layout", ["4x3", "12x1"])
def test_renders_png_with_one_axes(tmp_path, record, layout):
    fig = plot_ecg(record.signal, 500, title="synthetic", layout=layout)
    assert len(fig.axes) == 1
    out = tmp_path / f"{layout}.png"
    fig.savefig(out)
    assert out.read_bytes()[:8] == PNG_MAGIC
    ax = fig.axes[0]
    assert ax.get_xlim() == pytest.approx((-10.0, 10.0 * MM_PER_S))  # 10 s of paper + calibration margin
    n_traces = 13 if layout == "4x3" else 12  # 12 leads (+ the rhythm strip)
    traces = [line for line in ax.lines if len(line.get_xdata()) > 10]
    assert len(traces) == n_traces


def test_trace_is_drawn_at_10_mm_per_mv(record):
    fig = plot_ecg(record.signal, 500, layout="12x1")
    trace = next(line for line in fig.axes[0].lines if len(line.get_xdata()) > 10)  # lead I
    y = np.asarray(trace.get_ydata())
    assert np.ptp(y) == pytest.approx(np.ptp(record.signal[0]) * MM_PER_MV, rel=1e-5)
    x = np.asarray(trace.get_xdata())
    assert x[1] - x[0] == pytest.approx(MM_PER_S / 500)


def test_overlay_adds_a_band_axes_and_draws_into_given_axes(tmp_path, record):
    weights = np.random.default_rng(0).random((4, 312))
    fig = plot_ecg(record.signal, 500, overlay=weights, overlay_labels=["q1", "q2", "q3", "q4"])
    assert len(fig.axes) == 2
    assert [t.get_text() for t in fig.axes[1].texts] == ["q1", "q2", "q3", "q4"]
    fig.savefig(tmp_path / "overlay.png")
    host = Figure(figsize=(12, 10))
    axes = host.subplots(2, 1)
    assert plot_ecg(record.signal, 500, ax=axes[1]) is host
    assert len(host.axes) == 2


def test_bad_input_is_refused(record):
    with pytest.raises(ValueError, match="shape"):
        plot_ecg(record.signal[:6], 500)
    bad = record.signal.copy()
    bad[3, 10] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        plot_ecg(bad, 500)
    with pytest.raises(ValueError, match="overlay labels"):
        plot_ecg(record.signal, 500, overlay=np.ones((2, 10)), overlay_labels=["a"])
    with pytest.raises(ValueError, match="layout"):
        plot_ecg(record.signal, 500, layout="6x2")


def test_draw_command_puts_stores_side_by_side(tmp_path):
    store = tmp_path / "syn"
    assert melp_main(["synth", "--n", "3", "--out", str(store), "--seed", "1", "--no-progress"]) == 0
    out = tmp_path / "cmp.png"
    assert melp_main(["draw", "--store", str(store), "--store", str(store), "--n", "2", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == PNG_MAGIC
