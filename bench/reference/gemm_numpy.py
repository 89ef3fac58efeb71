"""SGEMM GFLOP/s of numpy's bundled BLAS (a second, newer OpenBLAS) on the shapes of bench/gemm.ts.

Usage: python3 gemm_numpy.py '{"threads": 2, "reps": 7, "shapes": [[name, ta, tb, M, N, K], ...]}'
Set the BLAS thread count in the environment before Python starts (OPENBLAS_NUM_THREADS); prints one JSON
line per shape: {"shape", "threads", "gflops" (median wall clock), "best", "gflop_per_cpu_second", "blas"}.
"""
import json
import sys
import time

import numpy as np


def blas_name():
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older numpy: no dict mode
        return "numpy BLAS"


def median(xs):
    s = sorted(xs)
    h = len(s) // 2
    return s[h] if len(s) % 2 else 0.5 * (s[h - 1] + s[h])


def main():
    args = json.loads(sys.argv[1])
    reps = int(args.get("reps", 7))
    rng = np.random.default_rng(1)
    name = blas_name()
    for shape_name, ta, tb, m, n, k in args["shapes"]:
        a = (rng.random((k, m) if ta else (m, k), dtype=np.float32) - 0.5)
        b = (rng.random((n, k) if tb else (k, n), dtype=np.float32) - 0.5)
        opa, opb = (a.T if ta else a), (b.T if tb else b)
        c = np.empty((m, n), dtype=np.float32)
        flop = 2.0 * m * n * k
        inner = max(1, round(2e9 / flop / 50))
        np.matmul(opa, opb, out=c)  # warm-up
        times, cpu = [], []
        for _ in range(reps):
            c0, t0 = time.process_time(), time.perf_counter()
            for _ in range(inner):
                np.matmul(opa, opb, out=c)
            times.append((time.perf_counter() - t0) / inner)
            cpu.append((time.process_time() - c0) / inner)
        times.sort()
        print(json.dumps({"shape": shape_name, "threads": args.get("threads"), "gflops": flop / median(times) / 1e9,
                          "best": flop / min(times) / 1e9, "gflop_per_cpu_second": flop / median(cpu) / 1e9,
                          "blas": name}), flush=True)


if __name__ == "__main__":
    main()
