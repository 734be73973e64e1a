"""Reading speed of :func:`melp.io.read_ecg` per format (ms per file, median of repeats), on real samples.

Files: the shared clinical samples (``$MELP_SHARED_DATA/ecg-formats``: GE MUSE, HL7 aECG, Philips),
pydicom's ``waveform_ecg.dcm``, the shared WFDB/CinC/CPSC/PTB records, and 12-lead 10 s 500 Hz files
this benchmark writes with each format's own library (EDF with edfio, BDF, CSV, NumPy, CODE-15 HDF5
with h5py). What is timed is the whole call: detection, parsing, decoding, leads by name, mV.

Run: ``.venv/bin/python -m benchmarks.bench_read_formats [--repeats N] [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import machine_info, write_result
from melp.data.leads import STANDARD_LEADS
from melp.io import read_ecg

REPO = Path(__file__).resolve().parents[1]


def shared_files() -> dict[str, tuple[Path, dict]]:
    data = Path(os.environ.get("MELP_SHARED_DATA", REPO.parent / "shared" / "data"))
    files = {
        "muse (GE MUSE XML, 10 s 500 Hz)": data / "ecg-formats" / "musePHI_muse_ecg2.xml",
        "aecg (HL7 aECG, 10 s 1000 Hz)": data / "ecg-formats" / "CVRG_hl7aecg-Example2.xml",
        "philips (PageWriter XML, 11 s 500 Hz)": data / "ecg-formats" / "2020-5-18_15-48-11.xml",
        "wfdb (CinC .hea+.mat, 10 s 500 Hz)": data / "ecg-records" / "cinc2021" / "E07500.hea",
        "wfdb (PTB .hea+.dat, 38 s 1000 Hz, 15 signals)": data / "ecg-records" / "ptbdb" / "s0010_re.hea",
        "mat (CPSC 2018, 10 s 500 Hz)": data / "ecg-records" / "cpsc2018" / "A1980.mat",
    }
    try:
        from pydicom.data import get_testdata_file

        files["dicom (Mortara, 10 s 1000 Hz)"] = Path(get_testdata_file("waveform_ecg.dcm"))
    except Exception:
        pass
    return {k: (v, {}) for k, v in files.items() if v.is_file()}


def written_files(root: Path) -> dict[str, tuple[Path, dict]]:
    import edfio
    import h5py

    sig = np.random.default_rng(0).normal(scale=0.5, size=(12, 5000))
    out: dict[str, tuple[Path, dict]] = {}
    for suffix, cls, sig_cls in ((".edf", edfio.Edf, edfio.EdfSignal), (".bdf", edfio.Bdf, edfio.BdfSignal)):
        signals = [sig_cls(sig[k] * 1000, sampling_frequency=500, label=f"ECG {STANDARD_LEADS[k]}",
                           physical_dimension="uV", physical_range=(-5000, 5000)) for k in range(12)]  # fmt: skip
        cls(signals).write(root / f"r{suffix}")
        out[f"edf ({suffix[1:].upper()} via edfio, 10 s 500 Hz)"] = (root / f"r{suffix}", {})
    with (root / "r.csv").open("w") as f:
        f.write(",".join(STANDARD_LEADS) + "\n")
        np.savetxt(f, sig.T, delimiter=",", fmt="%.4f")
    out["csv (header row, 10 s 500 Hz)"] = (root / "r.csv", {"fs": 500})
    np.save(root / "r.npy", sig.astype(np.float32))
    out["npy (12 × 5000 float32)"] = (root / "r.npy", {"fs": 500})
    with h5py.File(root / "r.hdf5", "w") as h5:
        h5["tracings"] = np.tile(sig[:, :4096].T[None].astype(np.float32), (8, 1, 1))
    out["hdf5 (CODE-15 layout, one exam of 8)"] = (root / "r.hdf5", {"index": 3})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="3 repeats")
    args = parser.parse_args()
    if args.quick:
        args.repeats = 3
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        files = {**shared_files(), **written_files(Path(tmp))}
        for name, (path, hints) in files.items():
            read_ecg(path, **hints)  # warm-up (imports, caches)
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                rec = read_ecg(path, **hints)
                times.append((time.perf_counter() - start) * 1e3)
            row = {"format": name, "ms_per_file": round(statistics.median(times), 2),
                   "min_ms": round(min(times), 2), "shape": list(rec.signal.shape), "fs": rec.fs,
                   "bytes": path.stat().st_size}  # fmt: skip
            results.append(row)
            print(f"{name:50s} {row['ms_per_file']:8.2f} ms  (min {row['min_ms']:.2f})  {row['bytes']:>9,d} B")
    write_result(
        "bench_read_formats",
        {
            "machine": machine_info(),
            "protocol": {"repeats": args.repeats, "statistic": "median ms"},
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
