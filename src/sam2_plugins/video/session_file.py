"""Session files: a whole video session saved and reopened (prompts, results, memories, options).

A ``.sam2session`` file is a zip holding ``session.json`` (human-readable: objects, prompts in
pixels, options, intensity normalisation, model, how far tracking got) and
``tensors.safetensors`` (exact prompt coordinates, mask prompts, prompted frames' outputs and
memories, the memories an interrupted propagation reads to go on, compact results): the two
halves of :meth:`VideoSession.state_dict`. Frames are not stored: pass the same video when
loading. Writes are atomic; reading never runs code from the file.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from ..exports import atomic_file
from ..intensity import IntensityNormalizer
from .session import VideoSession

if TYPE_CHECKING:
    from ..engine import Sam2

FORMAT = "sam2-plugins-session"
VERSION = 1


def save_session(session: VideoSession, path: "str | Path") -> Path:
    """Write everything the user made in ``session`` to ``path`` (atomically)."""
    path = Path(path)
    state = session.state_dict()
    meta = {"format": FORMAT, "version": VERSION, **state["meta"]}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("session.json", json.dumps(meta, indent=1))
        zf.writestr("tensors.safetensors", save_tensors(state["tensors"]))
    with atomic_file(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return path


def read_session_file(path: "str | Path") -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The metadata and tensors of a session file (validated to be one)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            meta = json.loads(zf.read("session.json"))
            tensors = load_tensors(zf.read("tensors.safetensors"))
    except FileNotFoundError:
        raise FileNotFoundError(f"session file not found: {path}") from None
    except Exception as err:  # noqa: BLE001
        raise ValueError(f"{path} is not a readable sam2-plugins session file ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a sam2-plugins session file")
    if meta.get("version", 0) > VERSION:
        raise ValueError(f"{path} was written by a newer sam2-plugins (format {meta['version']})")
    return meta, tensors


def load_session(path: "str | Path", model: "Sam2", source: Any, **options: Any) -> VideoSession:
    """Reopen a saved session on ``source`` (the same video) with ``model`` (the same weights)."""
    meta, tensors = read_session_file(path)
    non_overlap = options.pop("non_overlap_memory", None)  # given: it replaces the saved rule
    normalizer = IntensityNormalizer.from_dict(meta["normalizer"])
    session = model.open_video(source, normalizer=normalizer, **options)
    try:
        session.load_state_dict({"meta": meta, "tensors": tensors})
    except ValueError as err:
        session.close()
        raise ValueError(f"{path} {err}") from None
    if non_overlap is not None:
        session.non_overlap_memory = non_overlap
    return session


def read_session_results(path: "str | Path") -> tuple[np.ndarray, dict[int, int], dict[str, Any]]:
    """A session file's results without its movie or a model: the (T, H, W) uint16 label stack, the
    lineage ``{daughter: mother}`` and the video's description (for viewers and file readers)."""
    from .lineage import Lineage
    from .results import ResultStore

    meta, tensors = read_session_file(path)
    video = meta["video"]
    results = ResultStore(int(video["height"]), int(video["width"]))
    results.load_state_dict(tensors)
    labels = np.stack([results.label_frame(t) for t in range(int(video["num_frames"]))])
    return labels, Lineage.from_dict(meta.get("lineage")).parents, video
