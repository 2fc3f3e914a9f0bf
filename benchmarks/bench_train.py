"""Training throughput of the micro-synthetic recipe: clips drawn in the trainer's process
against clips drawn ahead by background data processes (``Trainer(data_workers=N)``).

Both contenders train the same model on the same clips (``per_step_clips``: a clip depends
only on its index), one torch thread each, so the ratio is what overlapping data generation
with the step buys. Image-only steps (the recipe's warm-up) and video steps (8-frame clips)
are measured separately; the first steps of each run (process start, allocator warm-up) are
left out of the median. ``--threads N`` then also compares the trainer on one torch thread with
the trainer on N threads, both fed by the data processes (the recipe's video phase runs on two
threads since this comparison; its single-frame warm-up stays on one).

``--autocast`` also times the steps under bfloat16 autocast (the recipe trains in float32; on
CPUs where bf16 is fast, such as AMX, this shows what autocast would buy).

    python benchmarks/bench_train.py [--steps 24] [--workers 1] [--threads 2] [--autocast]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import torch
from common import machine


def seconds_per_step(kind: str, steps: int, data_workers: int, skip: int = 4, threads: int = 1,
                     autocast: bool = False) -> float:
    from sam2_plugins.train import micro_synthetic as ms
    from sam2_plugins.train.loop import Trainer

    total = steps + skip
    if kind == "image":  # the recipe's warm-up: single frames, with its auxiliary losses
        settings = replace(ms.micro_settings(total + 1, seed=0, warmup=total), steps=total,
                           image_prob_schedule=((0, 1.0), (total, 1.0)))
    else:  # its video phase: 8-frame clips, no auxiliary losses
        settings = replace(ms.micro_settings(total, seed=0), image_prob_schedule=((0, 0.0), (total, 0.0)),
                           attn_aux_weight=0.0, instance_aux_weight=0.0)
    # not the recipe's: one thread count throughout; autocast (bfloat16) only when asked
    settings = replace(settings, thread_schedule=((0, threads),), autocast=autocast)
    trainer = Trainer(ms.init_model(ms.micro_config(), 0), ms.micro_dataset(), settings, data_workers=data_workers)
    times = []
    try:
        for _ in range(total):
            start = time.perf_counter()
            trainer.train_step()
            times.append(time.perf_counter() - start)
    finally:
        trainer.close()
    return statistics.median(times[skip:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=24, help="measured steps per run")
    parser.add_argument("--workers", type=int, default=1, help="data processes of the second contender")
    parser.add_argument("--threads", type=int, default=0,
                        help="also compare 1 trainer thread with this many (0: skip)")
    parser.add_argument("--autocast", action="store_true",
                        help="also compare the recipe's float32 steps with bfloat16 autocast (1 thread)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"machine: {machine()}")
    print("micro-synthetic recipe, one torch thread; median s/step")
    ahead: dict[str, float] = {}
    for kind in ("image", "video"):
        inline = seconds_per_step(kind, args.steps, 0)
        ahead[kind] = seconds_per_step(kind, args.steps, args.workers)
        print(f"{kind} steps: clips drawn in the trainer {inline:.3f} s, by {args.workers} data process(es) "
              f"{ahead[kind]:.3f} s: {inline / ahead[kind]:.2f}x")
    if args.threads:
        for kind in ("image", "video"):
            one, more = ahead[kind], seconds_per_step(kind, args.steps, args.workers, threads=args.threads)
            print(f"{kind} steps with {args.workers} data process(es): trainer on 1 thread {one:.3f} s, on "
                  f"{args.threads} threads {more:.3f} s: {one / more:.2f}x")
    if args.autocast:
        for kind in ("image", "video"):
            fp32, bf16 = ahead[kind], seconds_per_step(kind, args.steps, args.workers, autocast=True)
            print(f"{kind} steps with {args.workers} data process(es): float32 {fp32:.3f} s, bfloat16 autocast "
                  f"{bf16:.3f} s: {fp32 / bf16:.2f}x")


if __name__ == "__main__":
    main()
