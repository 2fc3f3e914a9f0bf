"""Training throughput of the micro-synthetic recipe: clips drawn in the trainer's process
against clips drawn ahead by background data processes (``Trainer(data_workers=N)``).

Both contenders train the same model on the same clips (``per_step_clips``: a clip depends
only on its index), one torch thread each, so the ratio is what overlapping data generation
with the step buys. Image-only steps (the recipe's warm-up) and video steps (8-frame clips)
are measured separately; the first steps of each run (process start, allocator warm-up) are
left out of the median. ``--threads N`` then also compares the trainer on one torch thread with
the trainer on N threads, both fed by the data processes (the comparison behind the recipe's
thread schedule: video steps on two threads, its single-frame warm-up on one).

``--autocast`` also times the steps under bfloat16 autocast (the recipe trains in float32; on
CPUs where bf16 is fast, such as AMX, this shows what autocast would buy).

``--optimizers`` also times the trainer's AdamW (``foreach``: the same floats as the per-parameter
loop, so recipes keep their weights) against the per-parameter loop and against
``fused=True`` (faster still, but it rounds differently: the recipe would give other weights).

``--clip-len N`` also times video steps of N-frame clips against the recipe's 8-frame ones,
alternating (the recipe's ``--clip-len``).

``--images-per-step N`` also times single-frame steps of N frames (``ClipSettings.images_per_step``)
against the recipe's one, alternating, and prints the time per frame: batching pays only where a
step is bound by per-operator overhead rather than by its kernels.

    python benchmarks/bench_train.py [--steps 24] [--workers 1] [--threads 2] [--autocast] [--optimizers]
                                     [--images-per-step 2] [--clip-len 6]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from common import machine

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes"))
import micro_synthetic as ms  # noqa: E402


def make_trainer(kind: str, steps: int, data_workers: int, threads: int = 1, autocast: bool = False,
                 optimizer: str = "trainer", images_per_step: int = 1, clip_len: int | None = None):
    """A trainer of the micro recipe's ``kind`` steps ("image" or "video") for ``steps`` steps;
    ``optimizer`` "loop" or "fused" replaces the trainer's AdamW (foreach) with that variant;
    ``images_per_step`` frames of different videos make one single-frame step; ``clip_len`` frames
    make a video clip (default: the recipe's)."""
    from sam2_plugins.train.loop import Trainer, _param_groups

    if kind == "image":  # the recipe's warm-up: single frames, with its auxiliary losses
        settings = replace(ms.micro_settings(steps + 1, seed=0, warmup=steps), steps=steps,
                           image_prob_schedule=((0, 1.0), (steps, 1.0)))
    else:  # its video phase: clips of the recipe's length unless given, no auxiliary losses
        settings = replace(ms.micro_settings(steps, seed=0, clip_len=clip_len or ms.CLIP_LEN),
                           image_prob_schedule=((0, 0.0), (steps, 0.0)), extra_losses=())
    # not the recipe's: one thread count throughout; autocast (bfloat16) only when asked
    settings = replace(settings, thread_schedule=((0, threads),), autocast=autocast,
                       clip=replace(settings.clip, images_per_step=images_per_step))
    trainer = Trainer(ms.init_model(ms.micro_config(), 0), ms.micro_dataset(), settings, data_workers=data_workers,
                      extra_losses=ms.extra_losses())
    if optimizer != "trainer":
        options = {"foreach": False} if optimizer == "loop" else {"fused": True}
        trainer.optimizer = torch.optim.AdamW(_param_groups(trainer.model, settings), lr=settings.lr,
                                              betas=(0.9, 0.999), **options)
    return trainer


def seconds_per_step(kind: str, steps: int, data_workers: int, skip: int = 4, threads: int = 1,
                     autocast: bool = False) -> float:
    return alternating_seconds(kind, steps, data_workers, {"": {"threads": threads, "autocast": autocast}}, skip)[""]


def alternating_seconds(kind: str, steps: int, data_workers: int, contenders: dict[str, dict],
                        skip: int = 4) -> dict[str, float]:
    """Median s/step of each contender (``make_trainer`` options by name), stepping the trainers in
    turn on the same clips, so a drift of the machine's speed reaches all of them alike."""
    total = steps + skip
    trainers = {name: make_trainer(kind, total, data_workers, **options) for name, options in contenders.items()}
    times: dict[str, list[float]] = {name: [] for name in trainers}
    try:
        for _ in range(total):
            for name, trainer in trainers.items():
                start = time.perf_counter()
                trainer.train_step()
                times[name].append(time.perf_counter() - start)
    finally:
        for trainer in trainers.values():
            trainer.close()
    return {name: statistics.median(t[skip:]) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=24, help="measured steps per run")
    parser.add_argument("--workers", type=int, default=1, help="data processes of the second contender")
    parser.add_argument("--threads", type=int, default=0,
                        help="also compare 1 trainer thread with this many (0: skip)")
    parser.add_argument("--autocast", action="store_true",
                        help="also compare the recipe's float32 steps with bfloat16 autocast (1 thread)")
    parser.add_argument("--optimizers", action="store_true",
                        help="also compare the trainer's AdamW (foreach) with the per-parameter loop and fused")
    parser.add_argument("--images-per-step", type=int, default=0, metavar="N",
                        help="also compare single-frame steps of N frames with the recipe's one (0: skip)")
    parser.add_argument("--clip-len", type=int, default=0, metavar="N",
                        help="also compare video steps of N-frame clips with the recipe's (0: skip)")
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

    if args.optimizers:
        for kind in ("image", "video"):  # the recipe's threads: one for single frames, two for clips
            threads = 1 if kind == "image" else 2
            times = alternating_seconds(kind, args.steps, args.workers, {
                name: {"threads": threads, "optimizer": name} for name in ("loop", "trainer", "fused")})
            print(f"{kind} steps ({threads} thread(s), alternating): AdamW per-parameter loop {times['loop']:.3f} s, "
                  f"foreach (the trainer's) {times['trainer']:.3f} s: {times['loop'] / times['trainer']:.2f}x; "
                  f"fused {times['fused']:.3f} s: {times['loop'] / times['fused']:.2f}x")

    if args.images_per_step > 1:  # the recipe's warm-up: one thread, one data process
        n = args.images_per_step
        times = alternating_seconds("image", args.steps, args.workers, {
            "1": {"images_per_step": 1}, str(n): {"images_per_step": n}})
        one, many = times["1"], times[str(n)]
        print(f"single-frame steps (1 thread, alternating): 1 frame {one:.3f} s, {n} frames {many:.3f} s "
              f"({many / one:.2f}x the time): {many / n:.3f} s a frame, {one / (many / n):.2f}x the frames per second")

    if args.clip_len:  # the recipe's video phase: two threads, one data process
        n = args.clip_len
        times = alternating_seconds("video", args.steps, args.workers, {
            "recipe": {"threads": 2}, "other": {"threads": 2, "clip_len": n}})
        ours, other = times["recipe"], times["other"]
        print(f"video steps (2 threads, alternating): {ms.CLIP_LEN}-frame clips {ours:.3f} s, {n}-frame clips "
              f"{other:.3f} s: {other / ours:.2f}x the time, {ours / other:.2f}x the steps per second")


if __name__ == "__main__":
    main()
