"""Time of the two heavy parts of a tracked frame, hiera-tiny at 1024, in the model's auto dtype.

Image encoder on one 1024 x 1024 frame; memory attention (4 layers) of one object against a
full memory bank (7 memories of 64 x 64 tokens + 64 pointer tokens). Random inputs, seeded
weights; mean of 2 runs after a warm-up.

    python benchmarks/bench_parts.py
"""

from __future__ import annotations

import torch

from common import machine, mean_seconds, seeded_model


def main() -> None:
    print(f"machine: {machine()}, torch threads {torch.get_num_threads()}")
    model = seeded_model(dtype="auto")
    pixels = torch.randn(1, 3, 1024, 1024)
    tokens, memories = 64 * 64, 7 * 64 * 64 + 64
    curr, curr_pos = torch.randn(1, tokens, 256), torch.randn(1, tokens, 256)
    memory, memory_pos = torch.randn(1, memories, 64), torch.randn(1, memories, 64)
    with torch.inference_mode(), model.precision():
        encoder = mean_seconds(lambda: model.image_encoder(pixels))
        attention = mean_seconds(lambda: model.memory_attention(curr, curr_pos, memory, memory_pos, 64))
    print(f"dtype {model.compute_dtype}")
    print(f"image encoder:    {encoder:.2f} s")
    print(f"memory attention: {attention:.2f} s (1 object, 7 memories)")


if __name__ == "__main__":
    main()
