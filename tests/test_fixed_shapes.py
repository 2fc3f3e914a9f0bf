"""The padded track step (src/sam2_plugins/video/padded.py), the path meant for CUDA graphs and compilers,
proven on CPU (issue 44): Meta's reference outputs hold on it, memory attention sees one tensor shape
over 30 frames whatever the objects' memory layouts, no tensor value comes back to the host inside a
track step, the session copies a frame's results back exactly once, and its masks are the default path's.
"""

from __future__ import annotations

import threading
import traceback
from contextlib import contextmanager

import numpy as np
import pytest
import torch

import test_reference_video as reference_video
from sam2_plugins.video.padded import PaddedMemoryBank, uses_fixed_shapes
from sam2_plugins.video.tracker import Tracker

FRAMES = 36
START = 6  # objects are prompted on frames 0, 2 and 4; every one of them is tracked from here on
TRACKED = 30


@pytest.fixture
def padded_banks(monkeypatch):
    """The padded path forced on for every session of the test; yields the batch sizes of the banks built."""
    monkeypatch.setattr(Tracker, "fixed_shapes", True)
    sizes: list[int] = []
    build = PaddedMemoryBank.memory

    def recording(self, layouts, memory_pos):
        sizes.append(len(layouts))
        return build(self, layouts, memory_pos)

    monkeypatch.setattr(PaddedMemoryBank, "memory", recording)
    return sizes


@pytest.mark.parametrize("name", reference_video.CASES)
def test_reference_video_cases_hold_on_the_padded_path(padded_banks, micro_model, reference, reference_cases, name):
    reference_video.test_video_case_matches_reference(micro_model, reference, reference_cases, name)
    assert padded_banks, "the padded path never ran"


@pytest.mark.parametrize("grad", [False, True], ids=["inference", "autograd"])  # explicit and fused attention
def test_masked_slots_leave_memory_attention_unchanged(micro_model, grad):
    """Whatever an empty slot holds (here noise, not zeros), the key mask keeps it out of the result."""
    torch.manual_seed(0)
    attention = micro_model.network.memory_attention
    d, kv = micro_model.config.d_model, micro_model.network.mem_dim
    hw = (micro_model.config.image_size // 16) ** 2
    curr, curr_pos = torch.randn(2, hw, d), torch.randn(2, hw, d)
    frames, pointers = torch.randn(2, 2 * hw, kv), torch.randn(2, 4, kv)  # two frame memories, one pointer
    codes = torch.randn(2, 2 * hw + 4, kv)
    noise_frame, noise_ptr = 9 * torch.randn(2, hw, kv), 9 * torch.randn(2, 4, kv)
    padded = torch.cat([frames, noise_frame, pointers, noise_ptr], 1)  # a third slot and a second pointer, empty
    padded_codes = torch.cat([codes[:, : 2 * hw], torch.randn(2, hw, kv), codes[:, 2 * hw :], torch.randn(2, 4, kv)], 1)
    valid = torch.cat([torch.ones(2, 2 * hw), torch.zeros(2, hw), torch.ones(2, 4), torch.zeros(2, 4)], 1).bool()
    with torch.set_grad_enabled(grad):
        exact = attention(curr, curr_pos, torch.cat([frames, pointers], 1), codes, 4)
        masked = attention(curr, curr_pos, padded, padded_codes, 8, valid)
        unmasked = attention(curr, curr_pos, padded, padded_codes, 8)
    assert torch.allclose(masked, exact, atol=1e-5)
    assert not torch.allclose(unmasked, exact, atol=1e-3)  # the noise would have changed it


def test_the_path_is_chosen_per_device(micro_model, reference):
    session = micro_model.open_video(reference["frames"])
    assert session.tracker.fixed_shapes is None
    assert not session.tracker.padded  # CPU: exact-size banks, the cheaper path there
    assert uses_fixed_shapes(True, torch.device("cpu")) and not uses_fixed_shapes(False, torch.device("cuda"))
    session.tracker.fixed_shapes = True
    assert session.tracker.padded
    session.close()


@pytest.fixture(scope="module")
def shipped_model():
    from sam2_plugins import load_model

    return load_model("micro-synthetic", device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def scene():
    from sam2_plugins.synthetic import make_scene_video

    return make_scene_video(3, num_frames=FRAMES, height=96, width=128, num_objects=3)


def layered_session(model, scene, fixed_shapes: bool):
    """Three objects prompted (masks) on frames 0, 2 and 4: on every tracked frame their memories come
    from different frames and their pointer lists differ in length, so no two share a layout."""
    session = model.open_video(scene.frames)
    session.tracker.fixed_shapes = fixed_shapes
    for obj_id, frame in zip((1, 2, 3), (0, 2, 4)):
        session.add_mask(frame, obj_id, scene.labels[frame] == obj_id)
    return session


def memory_attention_shapes(model, scene, fixed_shapes: bool) -> list[tuple]:
    """The input shapes memory attention sees on each of TRACKED frames (one entry per call)."""
    session = layered_session(model, scene, fixed_shapes)
    shapes = []

    def record(_module, args, kwargs):
        shapes.append(tuple(tuple(a.shape) if isinstance(a, torch.Tensor) else a
                            for a in (*args, *kwargs.values())))

    hook = model.network.memory_attention.register_forward_pre_hook(record, with_kwargs=True)
    try:
        frames = [r.frame_index for r in session.propagate(START, max_frames=TRACKED - 1)]
    finally:
        hook.remove()
        session.close()
    assert frames == list(range(START, START + TRACKED))
    return shapes


def test_memory_attention_sees_one_shape_over_30_frames(shipped_model, scene, padded_banks):
    shapes = memory_attention_shapes(shipped_model, scene, fixed_shapes=True)
    assert len(shapes) == TRACKED  # one batch for the three layouts on every frame
    assert len(set(shapes)) == 1, sorted(set(shapes))
    assert set(padded_banks) == {3}


def test_the_default_path_changes_shapes(shipped_model, scene):
    """What the padded path removes: exact-size banks grow, and each layout is a batch of its own."""
    shapes = memory_attention_shapes(shipped_model, scene, fixed_shapes=False)
    assert len(shapes) > TRACKED
    assert len(set(shapes)) > 1


SYNC_METHODS = ("item", "tolist", "cpu", "numpy", "__bool__", "__int__", "__float__", "__index__")


class HostReads:
    """Calls of tensor methods that bring a value to the host (on a GPU: a wait for it), made on
    this thread (frame prefetching runs on another), while ``counting``."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self.counting = False
        self.calls: list[str] = []

    def wrap(self, name: str):
        original = getattr(torch.Tensor, name)

        def counted(tensor, *args, **kwargs):
            if self.counting and threading.get_ident() == self.thread:
                caller = traceback.extract_stack(limit=2)[0]  # the frame that called the tensor method
                self.calls.append(f"{name} at {caller.filename.rsplit('/', 1)[-1]}:{caller.lineno}")
            return original(tensor, *args, **kwargs)

        return counted

    @contextmanager
    def counted(self):
        before, self.counting = self.counting, True
        try:
            yield
        finally:
            self.counting = before


@pytest.mark.parametrize("fixed_shapes", [True, False], ids=["padded", "default"])
def test_no_host_reads_inside_a_track_step(shipped_model, scene, monkeypatch, fixed_shapes):
    session = layered_session(shipped_model, scene, fixed_shapes)
    frames = session.propagate(START)
    for _ in range(3):  # first frames: caches of position codes and rotations fill
        next(frames)
    reads = HostReads()
    for name in SYNC_METHODS:
        monkeypatch.setattr(torch.Tensor, name, reads.wrap(name))
    step = session.tracker.step
    in_steps: list[list[str]] = []

    def counted_step(*args, **kwargs):
        before = len(reads.calls)
        with reads.counted():
            outs = step(*args, **kwargs)
        in_steps.append(reads.calls[before:])
        return outs

    session.tracker.step = counted_step
    per_frame = []
    for _ in range(8):
        with reads.counted():
            result = next(frames)
        per_frame.append(list(reads.calls))
        reads.calls.clear()
    monkeypatch.undo()
    session.close()
    assert len(in_steps) == 8
    assert all(calls == [] for calls in in_steps), in_steps
    # the session's results copy: one for all objects (low-res logits, scores and frame-size logits)
    assert all(len(calls) == 1 for calls in per_frame), per_frame
    assert result.logits.shape == (3, 96, 128)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def test_padded_path_tracks_as_the_default_path(shipped_model, scene):
    """Forward over the whole video (objects 2 and 3 read a future prompt before theirs): the same
    masks, IoU > 0.99 per object per frame."""
    runs = {}
    for fixed in (False, True):
        session = layered_session(shipped_model, scene, fixed)
        runs[fixed] = {(r.frame_index, oid): r.logits[k] for r in session.propagate(0)
                       for k, oid in enumerate(r.object_ids)}
        session.close()
    assert runs[True].keys() == runs[False].keys() and len(runs[True]) == 3 * FRAMES
    ious = {key: mask_iou(runs[True][key] > 0, runs[False][key] > 0) for key in runs[False]}
    worst = min(ious, key=ious.get)
    assert ious[worst] > 0.99, f"frame {worst[0]}, object {worst[1]}: IoU {ious[worst]:.4f}"
    largest = max(np.abs(runs[True][k] - runs[False][k]).max() for k in runs[False])
    assert largest < 1e-2  # float rounding, not a different model
    present = sum((runs[True][key] > 0).any() for key in runs[True])
    assert present > FRAMES  # the objects were tracked, not lost (empty masks agree trivially)
