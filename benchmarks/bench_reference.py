"""Converting the released encoder's layout: time and memory of ``MELP.from_reference`` at full size.

The released weights are not downloaded (nothing in melp downloads): a full-size ECG-only model
with the released config (14 beat queries, 128 caption queries, 8 × 768 encoder) is built with
random weights, written in the reference's naming by ``export_reference`` (all 180 keys), then
converted back, in fp32 and kept in bf16. Also one 10 s, 500 Hz record through ``encode_ecg``.

    python -m benchmarks.bench_reference
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import machine_info, write_result

RELEASED = {
    "model_size": "small", "shared_emb_dim": 256, "embed_dim_caption": 768, "use_attentional_pool_contrast": True,
    "use_attentional_pool_caption": True, "n_queries_contrast": 14, "n_queries_caption": 128,
    "attn_pooler_heads": 8, "proj": "linear", "drop": 0.0, "proj_bias": False, "num_leads": 12,
}  # fmt: skip


def main() -> None:
    from melp.models import MELP
    from melp.models.reference import config_from_reference, export_reference

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = MELP(config=config_from_reference(RELEASED)).eval()
    with tempfile.TemporaryDirectory() as tmp:
        ref = export_reference(model.to(torch.bfloat16), Path(tmp) / "MELP_Encoder")
        size_mb = (ref / "model.safetensors").stat().st_size / 1e6
        timings = {}
        for dtype in (torch.float32, torch.bfloat16):
            start = time.perf_counter()
            converted = MELP.from_reference(ref, dtype=dtype)
            timings[str(dtype).removeprefix("torch.")] = time.perf_counter() - start
    ecg = torch.rand(1, 12, 5000)
    converted = converted.float()
    with torch.no_grad():
        converted.encode_ecg(ecg)
        start = time.perf_counter()
        converted.encode_ecg(ecg)
        encode_s = time.perf_counter() - start
    payload = {
        "machine": machine_info(torch_threads=1),
        "checkpoint_mb_bf16": round(size_mb, 1),
        "parameters_m": round(sum(p.numel() for p in converted.parameters()) / 1e6, 2),
        "convert_s": {k: round(v, 2) for k, v in timings.items()},
        "encode_ecg_1x12x5000_s": round(encode_s, 3),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
    }
    print(payload)
    write_result("bench_reference", payload)


if __name__ == "__main__":
    main()
