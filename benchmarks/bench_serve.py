"""``melp serve`` latency and throughput: a bounded load generator on the loopback interface.

A real server (``melp serve`` in a subprocess, bound to 127.0.0.1) is started once per ECG-tower
backend (PyTorch, and ONNX Runtime on a tower written by ``melp export-onnx``). For each, the time
from sending the upload to receiving the whole result is measured for the first request after
start-up, then at 1, 4 and 16 concurrent clients, each client a thread sending the same record
back to back until the level's request budget or time cap is used up: p50/p95 latency and
completed requests per second. Every request of the levels is a full prediction (read, zero-shot,
beam-search report, sentence attention); a scores-only level (``report=false``, what the page asks
first, to show the reading, tracing and findings) follows. The first request after start-up is
timed as the page makes it: the scores-only request, then the full one.

The record is a 10 s, 500 Hz, 12-lead WFDB record of the shared data (``E07500``) when it is
there, else a synthetic 10 s 500 Hz ``.npy``. The model is ``--model DIR`` (e.g. the demo's
``runs/demo/run/final``) or, by default, a randomly initialised model of the ``tiny`` preset:
random weights write reports up to the length limit, the slowest case for generation.

Run: ``.venv/bin/python -m benchmarks.bench_serve [--quick] [--model DIR] [--backends torch onnx] [--threads 1 2]``.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
import numpy as np

from benchmarks.common import machine_info, write_result

HOST = "127.0.0.1"  # loopback only: the load generator never sends traffic elsewhere
REPO = Path(__file__).resolve().parents[1]
LEVELS = (1, 4, 16)


def tiny_model(out: Path) -> Path:
    """A randomly initialised ``tiny``-preset MELP with a tiny BERT, tokenizer fitted to the prompt bank."""
    import torch

    from melp.configs import preset_path
    from melp.eval.prompts import load_prompt_bank
    from melp.models import MELP, train_wordpiece_tokenizer
    from melp.models.tokenizer import build_bert_config, build_text_model_dir
    from melp.train.config import load_pretrain_config

    texts = [p for v in load_prompt_bank().values() for p in v] * 3
    tok = train_wordpiece_tokenizer(texts, vocab_size=2000)
    text_dir = build_text_model_dir(out / "text", tokenizer=tok, config=build_bert_config(vocab_size=len(tok)))
    config = load_pretrain_config(preset_path("tiny")).model
    torch.manual_seed(0)
    model = MELP.from_text_model(config=config, text_model_dir=text_dir)
    return model.save_pretrained(out / "model", tokenizer=model.tokenizer)


def record_files(tmp: Path) -> tuple[list[tuple[str, bytes]], dict[str, str], str]:
    """The uploaded file(s), the form fields and a description of the record."""
    shared = Path(os.environ.get("MELP_SHARED_DATA", REPO.parent / "shared" / "data")) / "ecg-records" / "cinc2021"
    if (shared / "E07500.hea").is_file():
        files = [(n, (shared / n).read_bytes()) for n in ("E07500.hea", "E07500.mat")]
        return files, {}, "shared cinc2021/E07500 (WFDB, 500 Hz, 10 s, 12 leads)"
    t = np.arange(5000) / 500.0
    sig = np.stack([np.sin(2 * np.pi * 1.2 * t + k) for k in range(12)]).astype(np.float32)
    path = tmp / "synthetic.npy"
    np.save(path, sig)
    return [("synthetic.npy", path.read_bytes())], {"fs": "500"}, "synthetic .npy (500 Hz, 10 s, 12 leads)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def start_server(
    model_dir: Path, backend: str, port: int, onnx_file: Path, threads: int, extra: list[str]
) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "melp.cli.main", "serve", "--model", str(model_dir), "--host", HOST]
    cmd += ["--port", str(port), "--backend", backend, "--onnx", str(onnx_file), "--threads", str(threads)]
    cmd += extra
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"melp serve exited: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
        try:
            if httpx.get(f"http://{HOST}:{port}/api/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("melp serve did not answer within 180 s")


def post(client: httpx.Client, url: str, files: list[tuple[str, bytes]], data: dict[str, str]) -> dict[str, Any]:
    res = client.post(url, files=[("files", f) for f in files], data=data, timeout=300)
    res.raise_for_status()
    return res.json()


def load_level(
    url: str, files: list[tuple[str, bytes]], data: dict[str, str], *, clients: int, budget: int, cap_s: float
) -> dict[str, Any]:
    """``clients`` threads sending back to back until ``budget`` requests are done or ``cap_s`` has passed."""
    latencies: list[float] = []
    model_ms: list[float] = []
    lock = threading.Lock()
    issued = 0
    stop_at = time.monotonic() + cap_s

    def client_loop() -> None:
        nonlocal issued
        with httpx.Client() as client:
            while True:
                with lock:
                    if issued >= budget or time.monotonic() > stop_at:
                        return
                    issued += 1
                start = time.perf_counter()
                body = post(client, url, files, data)
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed * 1e3)
                    model_ms.append(body["timing_ms"]["model"])

    start = time.perf_counter()
    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ordered = sorted(latencies)
    return {
        "clients": clients,
        "requests": len(latencies),
        "wall_s": round(wall, 2),
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(np.ceil(0.95 * len(ordered))) - 1)], 1),
        "requests_per_s": round(len(latencies) / wall, 3),
        "model_ms_median": round(statistics.median(model_ms), 1),
    }


def measure_backend(
    model_dir: Path,
    backend: str,
    onnx_file: Path,
    files: list[tuple[str, bytes]],
    data: dict[str, str],
    *,
    quick: bool,
    threads: int,
    extra: list[str],
) -> dict[str, Any]:
    port = free_port()
    proc = start_server(model_dir, backend, port, onnx_file, threads, extra)
    url = f"http://{HOST}:{port}/api/predict"
    try:
        health = httpx.get(f"http://{HOST}:{port}/api/health").json()
        with httpx.Client() as client:  # what the page does on a drop: findings first, then the report
            start = time.perf_counter()
            post(client, url, files, {**data, "report": "false"})
            first_findings_ms = (time.perf_counter() - start) * 1e3
            start = time.perf_counter()
            first = post(client, url, files, data)
            first_full_ms = (time.perf_counter() - start) * 1e3
        levels = []
        for clients in LEVELS:
            budget = clients * (2 if quick else 6)
            levels.append(load_level(url, files, data, clients=clients, budget=budget, cap_s=30 if quick else 120))
            print(f"{backend:5s} threads {threads} {levels[-1]}", flush=True)
        scores_only = load_level(url, files, {**data, "report": "false"}, clients=1, budget=3 if quick else 6, cap_s=60)
        print(f"{backend:5s} scores only {scores_only}", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {
        "backend": health["backend"],
        "threads": threads,
        "first_findings_ms": round(first_findings_ms, 1),
        "first_full_ms": round(first_full_ms, 1),
        "first_timing_ms": first["timing_ms"],
        "report_tokens": len(first["report"]["text"].split()) if first["report"]["available"] else 0,
        "levels": levels,
        "scores_only_1_client": scores_only,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 requests per client per level instead of 6")
    parser.add_argument("--model", type=Path, help="a saved model (default: a random tiny-preset model)")
    parser.add_argument("--backends", nargs="+", default=["torch", "onnx"], choices=("torch", "onnx"))
    parser.add_argument(
        "--max-report-tokens", type=int, help="melp serve --max-report-tokens (default: the model's limit)"
    )
    parser.add_argument("--threads", nargs="+", type=int, default=[1], help="melp serve --threads values (default 1)")
    args = parser.parse_args()
    extra = [] if args.max_report_tokens is None else ["--max-report-tokens", str(args.max_report_tokens)]
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        root = Path(tmp)
        model_dir = args.model if args.model is not None else tiny_model(root)
        onnx_file = root / "ecg_tower.onnx"
        if "onnx" in args.backends:
            export = [sys.executable, "-m", "melp.cli.main", "export-onnx", "--model", str(model_dir)]
            subprocess.run([*export, "--out", str(onnx_file)], check=True, capture_output=True)
        files, data, record = record_files(root)
        results = [
            measure_backend(model_dir, b, onnx_file, files, data, quick=args.quick, threads=t, extra=extra)
            for t in args.threads
            for b in args.backends
        ]
    write_result(
        "bench_serve",
        {
            "machine": machine_info(load_average_1m=round(os.getloadavg()[0], 2)),
            "protocol": {
                "model": str(args.model)
                if args.model is not None
                else "random tiny preset (reports run to the length limit)",
                "record": record,
                "levels": list(LEVELS),
                "requests_per_client": 2 if args.quick else 6,
                "request": "POST /api/predict: read + zero-shot (9 CPSC classes) + beam-3 report + sentence attention",
                "host": HOST,
                "max_report_tokens": args.max_report_tokens,
            },
            "results": results,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
