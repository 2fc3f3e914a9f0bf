"""Image-encoder features kept on disk, so a movie opened again is not encoded again.

The image encoder is most of the cost of tracking on a CPU, and a user who reopens a movie (a
napari session the next day, a rerun with other prompts, a batch job that restarts) would pay it
again. A :class:`FeatureStore` keeps each frame's :class:`ImageFeatures` as one safetensors file,
addressed by content:

    <folder>/<model key>/<k[:2]>/<k>.safetensors      k = digest of the frame's model input
    <folder>/<model key>/position_code.safetensors     the same for every frame, kept once

- the *model key* names the weights (file, size, modification time, or a digest of the parameters
  for a model built in memory), the working size, the compute dtype and the device type: features
  of another model, size or precision never match;
- the *frame key* is a digest of the preprocessed frame the encoder sees (1, 3, S, S), so a change
  of intensity normalisation, channels or the file itself is a different frame, and the same frame
  in another file or session is found again.

Files are written to a temporary name and renamed, so a killed process leaves no half file under a
real name; a file that cannot be read is treated as missing and written again. A store that cannot
write (disk full, permissions) warns once and the session goes on without it: work is never lost
to the cache.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..model.sam2 import ImageFeatures

if TYPE_CHECKING:  # pragma: no cover
    from ..engine import Sam2

__all__ = ["FeatureStore", "model_key"]

_FORMAT = "v1"


def model_key(model: "Sam2") -> str:
    """A short digest naming everything that changes a model's image features."""
    h = hashlib.blake2b(digest_size=10)
    h.update(f"{_FORMAT}|{model.image_size}|{model.compute_dtype}|{model.device.type}|".encode())
    weights = Path(model.weights) if model.weights else None
    if weights is not None and weights.is_file():
        st = weights.stat()
        h.update(f"{weights.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    else:  # weights made in memory: their values are their identity
        for name, tensor in model.network.image_encoder.state_dict().items():
            h.update(name.encode())
            h.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


class FeatureStore:
    """Frame content -> :class:`ImageFeatures` on disk, for one model (see module docs)."""

    def __init__(self, folder: str | os.PathLike, model: "Sam2") -> None:
        self.root = Path(folder).expanduser()
        self.folder = self.root / model_key(model)
        self.device = model.device
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=self.folder, prefix=".probe-", delete=True)
            probe.close()
        except OSError as exc:
            raise PermissionError(
                f"cannot use {self.root} as a feature cache folder: {exc.strerror or exc}; "
                "choose a writable folder (or none)") from exc
        self.writable = True
        self._pos: torch.Tensor | None = None

    @staticmethod
    def frame_key(pixels: torch.Tensor) -> str:
        """Digest of a preprocessed frame (1, 3, S, S) on the CPU."""
        h = hashlib.blake2b(digest_size=16)
        h.update(f"{tuple(pixels.shape)}|{pixels.dtype}|".encode())
        h.update(pixels.contiguous().numpy().tobytes())
        return h.hexdigest()

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.safetensors"

    def load(self, key: str) -> ImageFeatures | None:
        path = self._path(key)
        tensors = self._read(path) if path.is_file() else None
        if tensors is None or "embed" not in tensors:
            return None
        pos = self._position_code()
        if pos is None:
            return None
        n_high = sum(name.startswith("high_res.") for name in tensors)
        return ImageFeatures(tensors["embed"], pos, [tensors[f"high_res.{i}"] for i in range(n_high)])

    def _position_code(self) -> torch.Tensor | None:
        """The encoder's position code: the same for every frame, so kept once per model."""
        if self._pos is None:
            loaded = self._read(self.folder / "position_code.safetensors")
            self._pos = None if loaded is None else loaded["pos"]
        return self._pos

    def _read(self, path: Path) -> dict[str, torch.Tensor] | None:
        try:
            with safe_open(str(path), framework="pt", device=str(self.device)) as f:
                channels_last = set(filter(None, (f.metadata() or {}).get("channels_last", "").split(",")))
                tensors = {name: f.get_tensor(name) for name in f.keys()}
        except Exception:  # missing, damaged or foreign: encode the frame again (and rewrite it)
            return None
        # the encoder's memory layout, restored: later kernels (and so the last bits of results) follow it
        return {name: t.contiguous(memory_format=torch.channels_last) if name in channels_last else t
                for name, t in tensors.items()}

    def save(self, key: str, feats: ImageFeatures) -> None:
        if self._position_code() is None:
            self._write(self.folder / "position_code.safetensors", {"pos": feats.pos})
            self._pos = feats.pos
        tensors = {"embed": feats.embed}
        tensors.update({f"high_res.{i}": t for i, t in enumerate(feats.high_res)})
        self._write(self._path(key), tensors)

    def _write(self, path: Path, tensors: dict[str, torch.Tensor]) -> None:
        if not self.writable:
            return
        key = path.stem
        channels_last = [name for name, t in tensors.items()
                         if t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last)]
        tensors = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
        tmp = None
        try:
            path.parent.mkdir(exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key}-", suffix=".tmp")
            os.close(fd)
            save_file(tensors, tmp, metadata={"channels_last": ",".join(channels_last)})
            os.replace(tmp, path)
        except OSError as exc:
            self.writable = False
            warnings.warn(f"the feature cache in {self.root} stopped saving ({exc.strerror or exc}); "
                          "tracking goes on without it", RuntimeWarning, stacklevel=4)
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)

    def nbytes(self) -> int:
        """Bytes this model's features take in the folder."""
        return sum(p.stat().st_size for p in self.folder.glob("*/*.safetensors"))
