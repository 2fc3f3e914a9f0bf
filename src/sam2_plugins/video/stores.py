"""Bounded stores for the video session: image features and per-frame object memories.

:class:`FeatureCache` keeps encoder outputs of recently used frames (LRU, bounded in bytes),
so prompting or re-propagating over cached frames skips the image encoder.
:class:`SpillPool` bounds the RAM held by all objects' per-frame outputs (memories,
pointers, low-res logits); beyond its budget the least recently used records move to
disk and come back on demand, so peak RAM does not grow with video length. What the
last two track steps read stays in RAM even above the budget (many objects need more than
it holds: re-reading their memories from disk every frame would cost far more), and older
frames' object pointers are read without loading their records.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import itertools
import os
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import MutableMapping
from dataclasses import dataclass, field, fields
from typing import Iterator

import torch

from ..lru import ByteLRU
from ..model.sam2 import ImageFeatures


def _load_malloc_trim():
    """glibc's ``malloc_trim``, or None on other C libraries (macOS, Windows, musl)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _load_malloc_trim()


def return_freed_memory() -> None:
    """Hand heap pages freed by finished frames back to the OS.

    glibc keeps freed blocks for reuse, and the varied sizes of a frame's tensors fragment its
    heap, so without this the resident memory of a long propagation creeps up frame after frame
    (tiny at 256 with 32 MB budgets: +153 MB from frame 100 to 800 without it, +84 MB with it,
    27 MB of which is the memory budget filling up).
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def tensor_bytes(t: torch.Tensor | None) -> int:
    return 0 if t is None else t.numel() * t.element_size()


class FeatureCache(ByteLRU[int, ImageFeatures]):
    """Frame index -> :class:`ImageFeatures` of recently used frames, bounded in bytes."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(max_bytes, lambda feats: feats.nbytes)


_OUTPUT_IDS = itertools.count()
TENSOR_FIELDS = ("pred_masks", "obj_ptr", "object_score_logits", "maskmem_features")


@dataclass
class FrameOutput:
    """One object's result on one frame: what later frames read from memory."""

    pred_masks: torch.Tensor  # (1, 1, S/4, S/4) float32 low-res mask logits
    obj_ptr: torch.Tensor  # (1, C) object pointer
    object_score_logits: torch.Tensor  # (1, 1) > 0: object present
    maskmem_features: torch.Tensor | None = None  # (1, mem_dim, h, w) bfloat16, None until encoded
    uid: int = field(default_factory=lambda: next(_OUTPUT_IDS))  # never reused: names this output in caches

    @property
    def nbytes(self) -> int:
        return sum(tensor_bytes(getattr(self, name)) for name in TENSOR_FIELDS)


@dataclass(frozen=True)
class PointerRecord:
    """The part of a spilled output that later frames read as an object pointer (kept in RAM)."""

    obj_ptr: torch.Tensor  # (1, C)
    uid: int  # the output's uid


class SpillPool:
    """A RAM budget shared by several :class:`SpillDict` s; overflow goes to a temporary folder.

    Records read or written by the step in progress or the one before (:meth:`begin_step`) are
    never spilled: consecutive frames read mostly the same memories. The pool exceeds its
    budget when two steps need more.
    """

    def __init__(self, max_bytes: int, folder: str | None = None) -> None:
        self.max_bytes = max_bytes
        self._folder = folder
        self._owned_folder: str | None = None
        self._lru: OrderedDict[tuple[int, int], tuple["SpillDict", int]] = OrderedDict()  # -> (owner, step)
        self._step = 0
        self._bytes = 0
        self._ids = itertools.count()
        self.spilled = 0  # records written to disk so far

    def folder(self) -> str:
        if self._folder is None:
            self._owned_folder = self._folder = tempfile.mkdtemp(prefix="sam2_plugins_memory_")
        return self._folder

    def new_dict(self) -> "SpillDict":
        return SpillDict(self, next(self._ids))

    def begin_step(self) -> None:
        """A new track step starts: what earlier steps read may be spilled again."""
        self._step += 1

    def _touch(self, owner: "SpillDict", key: int, added_bytes: int = 0) -> None:
        self._lru[(owner.uid, key)] = (owner, self._step)
        self._lru.move_to_end((owner.uid, key))
        self._bytes += added_bytes
        while self._bytes > self.max_bytes and self._lru:
            (uid, k), (victim, step) = next(iter(self._lru.items()))
            if step >= self._step - 1:  # read by this step or the last (most will be read again), as is
                break  # everything used more recently
            self._lru.pop((uid, k))
            self._bytes -= victim._spill(k)

    def _forget(self, owner: "SpillDict", key: int, nbytes: int) -> None:
        if self._lru.pop((owner.uid, key), None) is not None:
            self._bytes -= nbytes

    @property
    def nbytes(self) -> int:
        return self._bytes

    def close(self) -> None:
        if self._owned_folder:
            shutil.rmtree(self._owned_folder, ignore_errors=True)
            self._owned_folder = self._folder = None

    def __del__(self) -> None:  # pragma: no cover - best effort cleanup
        try:
            self.close()
        except Exception:
            pass


class SpillDict(MutableMapping):
    """Frame index -> :class:`FrameOutput`, held in RAM or on disk as the pool decides."""

    def __init__(self, pool: SpillPool, uid: int) -> None:
        self.pool = pool
        self.uid = uid
        self._ram: dict[int, FrameOutput] = {}
        self._disk: dict[int, tuple[str, PointerRecord]] = {}  # -> (file, what stays in RAM)

    def __getitem__(self, key: int) -> FrameOutput:
        if key in self._ram:
            self.pool._touch(self, key)
            return self._ram[key]
        path, _ = self._disk.pop(key)  # KeyError when absent
        data = torch.load(path, weights_only=True)
        os.remove(path)
        value = FrameOutput(**data)
        self._ram[key] = value
        self.pool._touch(self, key, value.nbytes)
        return value

    def __setitem__(self, key: int, value: FrameOutput) -> None:
        self._discard(key)
        self._ram[key] = value
        self.pool._touch(self, key, value.nbytes)

    def __delitem__(self, key: int) -> None:
        if key not in self._ram and key not in self._disk:
            raise KeyError(key)
        self._discard(key)

    def pointer(self, key: int) -> "FrameOutput | PointerRecord | None":
        """An output's object pointer (and uid), without loading a spilled record."""
        if key in self._ram:
            return self._ram[key]
        return self._disk[key][1] if key in self._disk else None

    def _discard(self, key: int) -> None:
        if key in self._ram:
            self.pool._forget(self, key, self._ram.pop(key).nbytes)
        if key in self._disk:
            os.remove(self._disk.pop(key)[0])

    def _spill(self, key: int) -> int:
        value = self._ram.pop(key)
        path = os.path.join(self.pool.folder(), f"{self.uid}_{key}.pt")
        torch.save({f.name: getattr(value, f.name) for f in fields(value)}, path)
        self._disk[key] = (path, PointerRecord(value.obj_ptr, value.uid))
        self.pool.spilled += 1
        return value.nbytes

    def __contains__(self, key: object) -> bool:
        return key in self._ram or key in self._disk

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(set(self._ram) | set(self._disk)))

    def __len__(self) -> int:
        return len(self._ram) + len(self._disk)

    def clear(self) -> None:
        for key in list(self):
            self._discard(key)
