"""Shared setup of the benchmarks: same weights, same frames and prompts for every contender.

Denormals: random weights can produce denormal floats that slow x86 CPUs several-fold and
would make any contender look slow; every benchmark flushes denormals to zero for all
contenders (``torch.set_flush_denormal(True)``).
"""

from __future__ import annotations

import os
import platform
import resource
import time
from contextlib import contextmanager

import numpy as np
import torch

torch.set_flush_denormal(True)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {gpu}"


def seeded_model(name: str = "sam2.1-hiera-tiny", seed: int = 0, device: str = "cpu", dtype: str = "float32",
                 image_size: int | None = None):
    """An official architecture with seeded random weights (no download), as load_model would return it."""
    from dataclasses import replace

    from sam2_plugins import Sam2, Sam2Model, official_config
    from sam2_plugins.api import pick_dtype

    torch.manual_seed(seed)
    config = official_config(name)
    if image_size:
        config = replace(config, image_size=image_size)
    network = Sam2Model(config).eval().to(device)
    return Sam2(network, compute_dtype=pick_dtype(torch.device(device), dtype))


def scene_frames(num_frames: int, size: int = 1024, seed: int = 0) -> np.ndarray:
    """(T, size, size, 3) uint8 synthetic scene frames."""
    from sam2_plugins.synthetic import make_scene_video

    video = make_scene_video(seed, num_frames=num_frames, height=size, width=size, num_objects=4)
    return video.frames


def grid_points(n: int, size: int) -> list[tuple[float, float]]:
    """n click positions spread over the frame."""
    side = int(np.ceil(np.sqrt(n)))
    step = size / (side + 1)
    return [((i % side + 1) * step, (i // side + 1) * step) for i in range(n)]


def clicked_session(model, frames, clicks, **options):
    """A video session with one positive click per object on frame 0 (object ids 1..N)."""
    session = model.open_video(frames, **options)
    for obj_id, (x, y) in enumerate(clicks, start=1):
        session.add_points(0, obj_id, [[x, y]], [1])
    return session


def frame_stamps(session, device: torch.device) -> list[float]:
    """Propagate; perf_counter() after each frame, once a GPU has finished it."""
    stamps = []
    for _ in session.propagate():
        if device.type == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())
    return stamps


def mean_seconds(fn, repeats: int = 2, warmup: int = 1) -> float:
    """Mean wall time of fn() over `repeats` calls, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


@contextmanager
def timer(store: list):
    start = time.perf_counter()
    yield
    store.append(time.perf_counter() - start)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
