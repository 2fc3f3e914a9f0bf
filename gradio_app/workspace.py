"""One browser session's world: its folder, its clip, its objects and their prompts, its results.

A :class:`Workspace` belongs to exactly one Gradio session. It holds plain data only (prompts,
masks, file paths); the engine functions take that data and give arrays back, so they can run in
another process (ZeroGPU) and two visitors never share anything but the model. Its folder, a fresh
random name under the process's root, is removed when the session ends (``demo.unload`` or the
``gr.State`` delete callback, whichever comes first); nothing a visitor types becomes a path.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .media import Clip

_ROOT_ENV = "SAM2_APP_TMP"


def process_root() -> Path:
    """The folder under which every session's folder lives (``SAM2_APP_TMP`` or a fresh temp folder)."""
    global _root
    with _registry_lock:
        if _root is None:
            base = os.environ.get(_ROOT_ENV)
            if base:
                _root = Path(base)
                _root.mkdir(parents=True, exist_ok=True)
            else:
                _root = Path(tempfile.mkdtemp(prefix="sam2-app-"))
        return _root


@dataclass(frozen=True)
class FramePrompt:
    """An object's prompts on one frame: clicks ((x, y) pixels, 1 = object, 0 = background), a box
    (x0, y0, x1, y1), or a mask (from "segment everything")."""

    points: tuple[tuple[float, float], ...] = ()
    labels: tuple[int, ...] = ()
    box: tuple[float, float, float, float] | None = None
    mask: np.ndarray | None = None

    def with_click(self, x: float, y: float, positive: bool) -> "FramePrompt":
        return replace(self, points=self.points + ((float(x), float(y)),), labels=self.labels + (int(positive),),
                       mask=None)

    def with_box(self, box: tuple[float, float, float, float]) -> "FramePrompt":
        return replace(self, box=tuple(float(v) for v in box), mask=None)

    @property
    def empty(self) -> bool:
        return not self.points and self.box is None and self.mask is None


@dataclass
class TrackedObject:
    """A named object: its prompts by frame and its latest mask on each prompted frame."""

    name: str
    prompts: dict[int, FramePrompt] = field(default_factory=dict)
    masks: dict[int, np.ndarray] = field(default_factory=dict)  # frame -> (H, W) bool, from the prompts


class Workspace:
    """Everything one browser session made. Safe to :meth:`close` twice."""

    def __init__(self) -> None:
        self.key = secrets.token_hex(8)  # the folder's name: random, never from the request
        self.folder = process_root() / self.key
        self.folder.mkdir(mode=0o700)
        self.lock = threading.RLock()  # one engine call at a time per session
        self.cancel = threading.Event()  # the Stop button
        self.clip: Clip | None = None
        self.clip_name = ""
        self.model_name = "micro-synthetic"
        self.objects: dict[int, TrackedObject] = {}
        self.selected: int | None = None
        self.pending_corner: tuple[int, float, float] | None = None  # (frame, x, y) of a box's first corner
        self.labels_path: Path | None = None  # (T, H, W) uint16 tracking result
        self.tracked_frames = 0
        self.stale = False  # prompts changed since the last tracking
        self.outputs: dict[str, Path] = {}
        self.closed = False

    # ------------------------------------------------------------------ clip
    def new_clip(self, clip: Clip, name: str) -> None:
        """A new clip replaces the old one with all its objects and results."""
        self._drop_results()
        shutil.rmtree(self.folder / "features", ignore_errors=True)  # the old clip's encoder features
        self.clip, self.clip_name = clip, name
        self.objects, self.selected, self.pending_corner = {}, None, None

    def path(self, name: str) -> Path:
        """A file in this session's folder; `name` is always one of the app's own constant names."""
        if "/" in name or name.startswith("."):
            raise ValueError(f"not a plain file name: {name!r}")
        return self.folder / name

    # --------------------------------------------------------------- objects
    def next_id(self) -> int:
        return max(self.objects, default=0) + 1

    def add_object(self, name: str | None = None) -> int:
        oid = self.next_id()
        self.objects[oid] = TrackedObject(name or f"Object {oid}")
        self.selected, self.pending_corner = oid, None
        return oid

    def remove_object(self, oid: int) -> None:
        self.objects.pop(oid, None)
        if self.labels_path is not None:
            labels = np.load(self.labels_path, mmap_mode="r+")
            for t in range(labels.shape[0]):
                if (labels[t] == oid).any():
                    labels[t][labels[t] == oid] = 0
            labels.flush()
        self.selected = next(reversed(self.objects), None) if self.objects else None
        self.pending_corner = None
        self._invalidate_outputs()

    def set_prompt(self, oid: int, frame: int, prompt: FramePrompt, mask: np.ndarray | None) -> None:
        obj = self.objects[oid]
        if prompt.empty:
            obj.prompts.pop(frame, None)
            obj.masks.pop(frame, None)
        else:
            obj.prompts[frame] = prompt
            obj.masks[frame] = mask
        self.stale = True
        self._invalidate_outputs()

    def prompts(self) -> dict[int, dict[int, FramePrompt]]:
        """Every object's prompts, for the tracker (objects without any are left out)."""
        return {oid: dict(obj.prompts) for oid, obj in self.objects.items() if obj.prompts}

    # ---------------------------------------------------------------- frames
    def labels_on(self, frame: int) -> np.ndarray:
        """The label image shown on `frame`: the tracking result, with each object prompted here
        drawn from its newest prompt mask."""
        clip = self.clip
        lab = np.zeros((clip.height, clip.width), np.uint16)
        if self.labels_path is not None:
            lab[:] = np.load(self.labels_path, mmap_mode="r")[frame]
            lab[~np.isin(lab, list(self.objects))] = 0
        for oid, obj in self.objects.items():
            m = obj.masks.get(frame)
            if m is not None:
                lab[lab == oid] = 0
                lab[m] = oid
        return lab

    def set_result(self, labels_path: Path, frames_done: int) -> None:
        self.labels_path, self.tracked_frames, self.stale = labels_path, frames_done, False
        self._invalidate_outputs()

    def _invalidate_outputs(self) -> None:
        for p in self.outputs.values():
            p.unlink(missing_ok=True)
        self.outputs = {}

    def _drop_results(self) -> None:
        self._invalidate_outputs()
        if self.labels_path is not None:
            self.labels_path.unlink(missing_ok=True)
        self.labels_path, self.tracked_frames, self.stale = None, 0, False

    def summary(self) -> dict:
        """What the page shows, as plain data (also returned by the API)."""
        return {
            "clip": None if self.clip is None else {
                "name": self.clip_name, "frames": self.clip.num_frames, "height": self.clip.height,
                "width": self.clip.width, "fps": self.clip.fps, "note": self.clip.note},
            "model": self.model_name,
            "objects": [{"id": oid, "name": obj.name, "prompted_frames": sorted(obj.prompts)}
                        for oid, obj in self.objects.items()],
            "selected": self.selected,
            "tracked_frames": self.tracked_frames,
            "stale": self.stale,
            "files": sorted(p.name for p in self.outputs.values()),
        }

    def close(self) -> None:
        """Remove the session's folder and everything in it."""
        self.closed = True
        self.cancel.set()
        shutil.rmtree(self.folder, ignore_errors=True)


# ---------------------------------------------------------------- registry
_root: Path | None = None
_registry_lock = threading.RLock()
_by_session: dict[str, Workspace] = {}


def workspace_for(session_hash: str | None, current: Workspace | None = None) -> Workspace:
    """The workspace of a Gradio session (made on first use: API clients never fire ``load``)."""
    if current is not None and not current.closed:
        return current
    if not session_hash:
        raise ValueError("this request has no session; reload the page")
    with _registry_lock:
        ws = _by_session.get(session_hash)
        if ws is None or ws.closed:
            ws = _by_session[session_hash] = Workspace()
        return ws


def end_session(session_hash: str | None) -> None:
    """The session is over (its tab closed): remove its workspace and folder."""
    with _registry_lock:
        ws = _by_session.pop(session_hash, None) if session_hash else None
    if ws is not None:
        ws.close()


def close_workspace(ws: Workspace | None) -> None:
    """``gr.State``'s delete callback: the same clean-up, reached when Gradio drops the state."""
    if ws is not None:
        with _registry_lock:
            for key, value in list(_by_session.items()):
                if value is ws:
                    del _by_session[key]
        ws.close()


def open_sessions() -> int:
    with _registry_lock:
        return len(_by_session)
