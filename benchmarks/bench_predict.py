"""``melp predict`` latency per file on CPU (ms), with random weights at the ``tiny`` and the paper's ``small`` size.

The model is what a user loads: the preset's model config (``tiny``: 100 Hz, ``melp_paper``: the
paper's small encoder at 500 Hz) around a randomly initialised BERT of the preset's text size
(tiny: 256 wide × 4 layers; paper: BERT-base, 768 × 12) with a WordPiece vocabulary fitted to
melp's prompt bank. Latency is independent of the weights' values. Timed per call, after one
warm-up call, on a 10 s and a 60 s 12-lead 500 Hz record (:class:`melp.io.ECGRecord`):

* ``embed``: resample, window, normalise, encode (what ``melp embed`` does per file);
* ``zeroshot``: ``embed`` + scores for CPSC 2018's nine classes (class embeddings cached);
* ``predict``: zeroshot + a beam-3 report of ≤ 64 tokens on the first window + sentence attention.

File reading is not included (see ``bench_read_formats``). Run:
``.venv/bin/python -m benchmarks.bench_predict [--repeats N] [--threads N] [--sizes tiny small] [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import machine_info, write_result
from melp.configs import preset_path
from melp.eval.prompts import load_prompt_bank
from melp.inference import ECGPredictor, InferenceConfig
from melp.io import ECGRecord
from melp.models import MELP, train_wordpiece_tokenizer
from melp.models.tokenizer import build_bert_config, build_text_model_dir
from melp.train.config import load_pretrain_config

PRESETS = {"tiny": ("tiny", dict(hidden_size=256, num_layers=4, num_heads=4, intermediate_size=1024)),
           "small": ("melp_paper", dict(hidden_size=768, num_layers=12, num_heads=12, intermediate_size=3072))}  # fmt: skip


def build_model(size: str, root: Path) -> MELP:
    preset, text = PRESETS[size]
    config = load_pretrain_config(preset_path(preset)).model
    texts = [p for v in load_prompt_bank().values() for p in v] * 3
    tok = train_wordpiece_tokenizer(texts, vocab_size=2000)
    bert = build_bert_config(vocab_size=len(tok), max_position_embeddings=512, **text)
    text_dir = build_text_model_dir(root / f"text-{size}", tokenizer=tok, config=bert)
    torch.manual_seed(0)
    return MELP.from_text_model(config=config, text_model_dir=text_dir).eval()


def record(seconds: float) -> ECGRecord:
    sig = np.random.default_rng(0).normal(scale=0.5, size=(12, round(500 * seconds))).astype(np.float32)
    return ECGRecord(path="bench.npy", format="npy", signal=sig, fs=500.0, leads_present=np.ones(12, bool))


def timed(fn, repeats: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return {"median_ms": round(statistics.median(times), 1), "min_ms": round(min(times), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--sizes", nargs="+", default=["tiny", "small"], choices=sorted(PRESETS))
    parser.add_argument("--quick", action="store_true", help="tiny only, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.repeats = ["tiny"], 1
    torch.set_num_threads(args.threads)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            model = build_model(size, Path(tmp))
            n_params = sum(p.numel() for p in model.parameters())
            for seconds in (10.0, 60.0):
                rec = record(seconds)
                full = ECGPredictor(model=model, config=InferenceConfig(num_beams=3, max_report_length=64))
                quick = ECGPredictor(model=model, config=InferenceConfig(generate=False))
                row = {
                    "size": size,
                    "model_fs": model.config.fs,
                    "parameters": n_params,
                    "record_s": seconds,
                    "embed": timed(lambda q=quick, r=rec: q.embed(r), args.repeats),
                    "zeroshot": timed(lambda q=quick, r=rec: q.predict(r), args.repeats),
                    "predict": timed(lambda f=full, r=rec: f.predict(r), max(1, args.repeats // 2)),
                }
                results.append(row)
                print(f"{size:6s} {seconds:4.0f} s  embed {row['embed']['median_ms']:8.1f} ms  zeroshot "
                      f"{row['zeroshot']['median_ms']:8.1f} ms  predict {row['predict']['median_ms']:8.1f} ms")  # fmt: skip
    write_result(
        "bench_predict",
        {
            "machine": machine_info(torch_threads=args.threads, torch=torch.__version__),
            "protocol": {"repeats": args.repeats, "statistic": "median ms per call after one warm-up"},
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
