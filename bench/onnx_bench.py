"""ONNX export bench: export time, fp32 vs int8 size, and onnxruntime's
per-batch latency (fp32, int8) beside LibTorch's forward on the same batch
(batch 1 and 256, one thread), as ratios in one run.

    .venv/bin/python bench/onnx_bench.py build/bench/bench_onnx CHECKPOINT

CHECKPOINT: a fedtrack checkpoint (fedtrack run --model-out, restore).
"""

import json
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort


def median_seconds(reps, f):
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main():
    exe, checkpoint = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        torch = json.loads(subprocess.run([exe, checkpoint, tmp], check=True, capture_output=True,
                                          text=True).stdout.strip().splitlines()[-1])
        print(f"model {torch['model']}: export fp32 {torch['export_fp32_s'] * 1000:.1f} ms, "
              f"int8 {torch['export_int8_s'] * 1000:.1f} ms")
        print(f"size: fp32 {torch['fp32_bytes']} bytes, int8 {torch['int8_bytes']} bytes "
              f"({torch['int8_bytes'] / torch['fp32_bytes']:.3f}x)")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        sessions = {kind: ort.InferenceSession(f"{tmp}/{kind}.onnx", options, providers=["CPUExecutionProvider"])
                    for kind in ("fp32", "int8")}
        input_shape = sessions["fp32"].get_inputs()[0].shape[1:]
        for batch in (1, 256):
            x = np.random.default_rng(0).random([batch] + list(input_shape), dtype=np.float32)
            reps = 2000 if batch == 1 else 50
            line = f"batch {batch:3d}: libtorch {torch[f'torch_batch{batch}_s'] * 1e3:.3f} ms"
            for kind, s in sessions.items():
                t = median_seconds(reps, lambda: s.run(["logits"], {"input": x}))
                line += f", onnxruntime {kind} {t * 1e3:.3f} ms ({t / torch[f'torch_batch{batch}_s']:.2f}x)"
            print(line)


if __name__ == "__main__":
    main()
