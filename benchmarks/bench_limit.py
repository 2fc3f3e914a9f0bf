"""This machine's matmul throughput and the per-frame time limit it implies for tiny at 1024.

Work per frame and object: ~290 GFLOP image encoder + ~610 GFLOP
memory attention over a full memory bank. The limit is that work at the best measured matmul
rate of a dtype; compare it with ``bench_propagation.py`` run on the same machine.

    python benchmarks/bench_limit.py
"""

from __future__ import annotations

import torch

from common import machine, mean_seconds

ENCODER_GFLOP, MEMORY_ATTENTION_GFLOP = 290.0, 610.0
# (m, k, n): attention over one frame, memory attention's query chunks against 7 memories (scores,
# then scores x values; on AMX a 512-row chunk ran ~2,200 GFLOP/s against ~1,900 at 256), an MLP
SHAPES = [(4096, 256, 4096), (256, 256, 28736), (512, 256, 28736), (256, 28736, 256), (4096, 768, 3072)]


def gflops(dtype: torch.dtype, m: int, k: int, n: int, repeats: int = 10) -> float:
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    return 2 * m * k * n / mean_seconds(lambda: a @ b, repeats, warmup=2) / 1e9


def main() -> None:
    print(f"machine: {machine()}, torch threads {torch.get_num_threads()}")
    best = {}
    for dtype in (torch.float32, torch.bfloat16):
        rates = [gflops(dtype, *shape) for shape in SHAPES]
        best[dtype] = max(rates)
        shown = ", ".join(f"{m}x{k}x{n}: {r:.0f}" for (m, k, n), r in zip(SHAPES, rates))
        print(f"{str(dtype):15s} GFLOP/s {shown}")
    work = ENCODER_GFLOP + MEMORY_ATTENTION_GFLOP
    for dtype, rate in best.items():
        print(f"limit {str(dtype):15s} {work / rate:.2f} s/frame (1 object; best rate {rate:.0f} GFLOP/s)")
    print(f"bf16 / fp32 matmul speed: {best[torch.bfloat16] / best[torch.float32]:.2f}x")


if __name__ == "__main__":
    main()
