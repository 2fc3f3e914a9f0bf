"""The video session's state as data: everything the user made (prompts, results, lineage,
options, how far an interrupted propagation got), out and back in. Session files
(:mod:`.session_file`) write and read it.

Part of :class:`~sam2_plugins.video.session.VideoSession` (a mixin of it, kept in its own module
for size).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch

from ..config import Sam2Config
from ..intensity import IntensityNormalizer
from ..prompts import validate_object_id
from .lineage import Lineage
from .memory_select import memory_reach
from .passes import PassProgress
from .track import ObjectTrack


class SessionStateMixin:
    """``state_dict`` and ``load_state_dict`` of a :class:`VideoSession`."""

    def state_dict(self) -> dict[str, Any]:
        """Everything the user made: ``{"meta": JSON-able description, "tensors": {key: tensor}}``.

        Prompts, prompted frames' outputs and memories, results, options, the intensity
        normalisation, and what an interrupted :meth:`propagate_all` needs to go on.
        """
        size = self.model.image_size
        scale = (self.width / size, self.height / size)
        keep = set() if self.progress is None else self.progress.memories_to_keep(
            self.num_frames, memory_reach(self.model.config))
        tensors: dict[str, torch.Tensor] = {}
        objects = []
        for track in self.tracks.values():
            record, track_tensors = track.to_record(scale, keep)
            objects.append(record)
            tensors.update(track_tensors)
        tensors.update(self.results.state_dict())
        meta = {
            "model": {"checkpoint": self.model.weights, "config": self.model.config.to_dict()},
            "video": {"description": self.source.description, "num_frames": self.num_frames,
                      "height": self.height, "width": self.width},
            "normalizer": self.normalizer.to_dict(),
            "tracking": {"non_overlap_memory": self.tracker.non_overlap_memory},
            "objects": objects,
            "lineage": self.lineage.to_dict(),
            "progress": None if self.progress is None else asdict(self.progress),
        }
        return {"meta": meta, "tensors": tensors}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` into this session (opened on the same video with the same
        model); every check is made before anything changes."""
        meta, tensors = state["meta"], state["tensors"]
        saved = Sam2Config.from_dict(meta["model"]["config"]).to_dict()
        ours = self.model.config.to_dict()
        diff = {k for k, v in saved.items() if k != "name" and ours.get(k) != v}
        if diff:
            raise ValueError(f"made with a different model (config differs in: {', '.join(sorted(diff))})")
        video = meta["video"]
        if (self.num_frames, self.height, self.width) != (video["num_frames"], video["height"], video["width"]):
            raise ValueError(
                f"belongs to a video of {video['num_frames']} frames of {video['width']}x{video['height']}, "
                f"not {self.source.description} ({self.num_frames} frames of {self.width}x{self.height})"
            )
        Lineage.from_dict(meta.get("lineage"))  # readable, before anything changes
        tracks = {}
        for record in meta["objects"]:
            validate_object_id(record["id"])
            tracks[int(record["id"])] = ObjectTrack.from_record(record, tensors, self.pool.new_dict(),
                                                                self.model.device)
        normalizer = IntensityNormalizer.from_dict(meta["normalizer"])
        self.reset()
        if normalizer.to_dict() != self.normalizer.to_dict():
            self.source.normalizer = normalizer
            self.feature_cache.clear()
        self.tracks.update(tracks)
        self.lineage = Lineage.from_dict(meta.get("lineage"))
        self.results.load_state_dict(tensors)
        self.tracker.non_overlap_memory = bool(meta["tracking"]["non_overlap_memory"])
        progress = meta.get("progress")
        self.progress = None if progress is None else PassProgress(**progress)
