"""Save and restore a whole video session: prompts, results, memories of prompted frames, options.

A ``.sam2session`` file is a zip holding ``session.json`` (human-readable: objects, prompts in
pixels, options, intensity normalisation, model) and ``tensors.safetensors`` (exact prompt
coordinates, mask prompts, prompted frames' outputs and memories, compact results). Frames
are not stored: pass the same video when loading. Writes are atomic.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from .config import Sam2Config
from .exports import atomic_file
from .intensity import IntensityNormalizer
from .memory import TENSOR_FIELDS, FrameOutput
from .session import VideoSession
from .tracker import PointPrompt

FORMAT = "sam2-plugins-session"
VERSION = 1
_OUTPUT_FIELDS = TENSOR_FIELDS


def save_session(session: VideoSession, path: "str | Path") -> Path:
    """Write everything the user made in ``session`` to ``path`` (atomically)."""
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    objects = []
    sx, sy = session.width / session.model.image_size, session.height / session.model.image_size
    for oid, track in session.tracks.items():
        prompts = []
        for f, p in sorted(track.points.items()):
            key = f"points/{oid}/{f}"
            tensors[key + "/coords"] = p.coords.cpu().contiguous()
            tensors[key + "/labels"] = p.labels.cpu().contiguous()
            pix = (p.coords[0].cpu() * torch.tensor([sx, sy])).tolist()
            prompts.append({"frame": f, "points": pix, "labels": p.labels[0].tolist()})
        for f, m in sorted(track.masks.items()):
            tensors[f"masks/{oid}/{f}"] = m.cpu().to(torch.uint8).contiguous()
            prompts.append({"frame": f, "mask": True})
        for kind, store in (("cond", track.cond), ("pending", track.pending)):
            for f, out in store.items():
                for name in _OUTPUT_FIELDS:
                    value = getattr(out, name)
                    if value is not None:
                        tensors[f"{kind}/{oid}/{f}/{name}"] = value.cpu().contiguous()
        objects.append({"id": oid, "prompts": prompts, "tracked": {str(f): r for f, r in track.tracked.items()}})
    for f in session.results.frames():
        for oid in session.results.object_ids_on(f):
            tensors[f"results/{oid}/{f}"] = torch.from_numpy(session.results.low_res(f, oid)).half()
            tensors[f"scores/{oid}/{f}"] = torch.tensor([session.results.score(f, oid)])
    model = session.model
    meta: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "model": {"checkpoint": getattr(model, "checkpoint_path", None), "config": model.config.to_dict()},
        "video": {"description": session.source.description, "num_frames": session.num_frames,
                  "height": session.height, "width": session.width},
        "normalizer": session.normalizer.to_dict(),
        "tracking": {"non_overlap_memory": session.tracker.non_overlap_memory},
        "objects": objects,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("session.json", json.dumps(meta, indent=1))
        zf.writestr("tensors.safetensors", save_tensors(tensors))
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
        raise
    except Exception as err:  # noqa: BLE001
        raise ValueError(f"{path} is not a readable sam2-plugins session file ({err})") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a sam2-plugins session file")
    if meta.get("version", 0) > VERSION:
        raise ValueError(f"{path} was written by a newer sam2-plugins (format {meta['version']})")
    return meta, tensors


def load_session(path: "str | Path", model, source: Any, **options: Any) -> VideoSession:
    """Reopen a saved session on ``source`` (the same video) with ``model`` (the same weights)."""
    meta, tensors = read_session_file(path)
    saved = Sam2Config.from_dict(meta["model"]["config"])
    if saved != model.config:
        ours = model.config.to_dict()
        diff = {k for k, v in saved.to_dict().items() if k != "name" and ours.get(k) != v}
        raise ValueError(f"{path} was made with a different model (config differs in: {', '.join(sorted(diff))})")
    normalizer = IntensityNormalizer.from_dict(meta["normalizer"])
    options.setdefault("non_overlap_memory", meta.get("tracking", {}).get("non_overlap_memory"))
    session = model.open_video(source, normalizer=normalizer, **options)
    video = meta["video"]
    if (session.num_frames, session.height, session.width) != (video["num_frames"], video["height"], video["width"]):
        raise ValueError(
            f"{path} belongs to a video of {video['num_frames']} frames of {video['width']}x{video['height']}, "
            f"not {session.source.description} ({session.num_frames} frames of {session.width}x{session.height})"
        )
    device = model.device
    for obj in meta["objects"]:
        oid = obj["id"]
        track = session.tracker.new_track(oid)
        for prompt in obj["prompts"]:
            f = prompt["frame"]
            if "mask" in prompt:
                track.masks[f] = tensors[f"masks/{oid}/{f}"].float().to(device)
            else:
                track.points[f] = PointPrompt(tensors[f"points/{oid}/{f}/coords"], tensors[f"points/{oid}/{f}/labels"])
        for kind, store in (("cond", track.cond), ("pending", track.pending)):
            prefix = f"{kind}/{oid}/"
            frames = {int(k[len(prefix):].split("/")[0]) for k in tensors if k.startswith(prefix)}
            for f in sorted(frames):
                fields = {n: tensors.get(f"{prefix}{f}/{n}") for n in _OUTPUT_FIELDS}
                store[f] = FrameOutput(**{n: (None if v is None else v.to(device)) for n, v in fields.items()})
        track.tracked = {int(f): bool(r) for f, r in obj["tracked"].items()}
        session.tracks[oid] = track
    for key, value in tensors.items():
        if key.startswith("results/"):
            _, oid, f = key.split("/")
            score = float(tensors[f"scores/{oid}/{f}"][0])
            session.results.put(int(f), int(oid), value, score)
    return session
