"""Data-parallel training on one machine: several CPU processes, one model, averaged gradients.

Each process draws its own clips (its own random stream) and runs one clip per step; the
gradients are summed over processes and divided by their number before the (identical)
optimiser step, so all copies of the model stay equal bit for bit. On a CPU where one
training process cannot use a second core (small tensors: the step is bound by per-operation
overhead), two processes train on twice the clips in about the same time.

    run_workers(2, fn, *args)   # fn(rank, world_size, *args) in each process, gloo process group
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """(rank, world size) of this process: (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def average_gradients(params: list[torch.nn.Parameter]) -> None:
    """Average ``.grad`` over the process group (a missing gradient counts as zero; it stays
    missing only where every process lacks it)."""
    _, size = world()
    if size == 1 or not params:
        return
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).float() for p in params]
                     + [torch.tensor([float(p.grad is not None) for p in params])])
    dist.all_reduce(flat)
    has_grad = flat[-len(params):]
    offset = 0
    for p, present in zip(params, has_grad):
        n = p.numel()
        p.grad = (flat[offset : offset + n] / size).view_as(p).to(p.dtype) if present > 0 else None
        offset += n


def broadcast_parameters(module: torch.nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every process."""
    if world()[1] == 1:
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def any_process(flag: bool) -> bool:
    """True on every process when ``flag`` is true on any of them."""
    if world()[1] == 1:
        return flag
    t = torch.tensor([float(flag)])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def gather(obj: Any) -> list[Any]:
    """``obj`` from every process, in rank order (a one-element list outside a group)."""
    size = world()[1]
    if size == 1:
        return [obj]
    out: list[Any] = [None] * size
    dist.all_gather_object(out, obj)
    return out


def _entry(rank: int, size: int, rendezvous: str, threads: int, fn: Callable, args: tuple) -> None:
    torch.set_num_threads(threads)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=size)
    try:
        fn(rank, size, *args)
    finally:
        dist.destroy_process_group()


def run_workers(num_workers: int, fn: Callable[..., Any], *args: Any, threads: int = 1) -> None:
    """Run ``fn(rank, num_workers, *args)`` in ``num_workers`` processes joined in a gloo group.

    ``fn`` must be importable (a module-level function). One worker runs in this process,
    without a process group.
    """
    if num_workers < 1:
        raise ValueError(f"need at least one worker, got {num_workers}")
    if num_workers == 1:
        torch.set_num_threads(threads)
        fn(0, 1, *args)
        return
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory(prefix="sam2-train-") as tmp:
        rendezvous = str(Path(tmp) / "rendezvous")
        mp.spawn(_entry, args=(num_workers, rendezvous, threads, fn, args), nprocs=num_workers, join=True)
