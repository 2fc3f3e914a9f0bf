"""Users' own annotated videos (time-lapses) for fine-tuning.

Layout of ``DATA_DIR`` -- one sub-folder per video (or ``DATA_DIR`` itself is one video):

Per-frame files::

    DATA_DIR/
      movie_a/
        images/   t000.tif  t001.tif  ...   (or .png/.jpg/.bmp; grey, RGB or multi-channel)
        labels/   t000.tif  t001.tif  ...   (.tif/.png instance masks, same count)
      movie_b/ ...

Stacks::

    DATA_DIR/
      movie_c/
        images.tif   (T, H, W) or (T, H, W, C)
        labels.tif   (T, H, W)

Images and labels pair up by natural sort order of the file names (``t2`` before ``t10``).
A label image holds one integer id per object (0 = background) and an object keeps its id in
every frame it appears in (tracking ground truth, e.g. Cell Tracking Challenge ``man_track``
files or napari Labels layers saved per frame). Images are read and intensity-normalised
exactly as a video session reads them (16-bit data: percentile stretch fitted per video).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
LABEL_SUFFIXES = (".png", ".tif", ".tiff")
STACK_NAMES = ("images.tif", "images.tiff")
LABEL_STACK_NAMES = ("labels.tif", "labels.tiff")


def _natural_key(path: Path) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", path.name.lower())]


def _files(folder: Path, suffixes: Sequence[str]) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                   and p.suffix.lower() in suffixes), key=_natural_key)


def _read_label(path: Path) -> np.ndarray:
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        arr = np.asarray(tifffile.imread(str(path)))
    else:
        from PIL import Image

        arr = np.asarray(Image.open(path))
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):  # colour-coded labels: one id per colour
        rgb = arr[..., :3].astype(np.int64)
        arr = rgb[..., 0] * 65536 + rgb[..., 1] * 256 + rgb[..., 2]
    if arr.ndim != 2:
        raise ValueError(f"label image {path} has shape {arr.shape}; expected (H, W) integer ids")
    return arr.astype(np.int64)


class _Frames:
    """Lazy (T, H, W, 3) float [0, 1] frames of a video source, indexed by a list of frames."""

    def __init__(self, source) -> None:
        self.source = source

    def __len__(self) -> int:
        return self.source.num_frames

    def __getitem__(self, idx) -> np.ndarray:
        return np.stack([self.source.read(int(i)) for i in np.atleast_1d(idx)])


class _Labels:
    def __init__(self, files: list[Path] | None = None, stack: np.ndarray | None = None) -> None:
        self.files, self.stack = files, stack

    def __len__(self) -> int:
        return len(self.files) if self.files is not None else len(self.stack)

    def __getitem__(self, idx) -> np.ndarray:
        idx = np.atleast_1d(idx)
        if self.files is not None:
            return np.stack([_read_label(self.files[int(i)]) for i in idx])
        return np.asarray(self.stack[idx]).astype(np.int64)


class FolderDataset:
    """Annotated videos in the layout described in this module's documentation."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"no such data folder: {self.root}")
        candidates = [self.root] if _is_video_dir(self.root) else sorted(
            (p for p in self.root.iterdir() if p.is_dir() and _is_video_dir(p)), key=_natural_key)
        if not candidates:
            raise ValueError(
                f"{self.root} holds no annotated video: expected sub-folders with images/ + labels/ "
                f"folders or images.tif + labels.tif stacks (see sam2_plugins.train.folder)")
        self.videos = candidates
        self._open: dict[int, tuple[_Frames, _Labels]] = {}
        for i in range(len(self.videos)):  # validate every video up front: fail before training
            self._load(i)

    def __len__(self) -> int:
        return len(self.videos)

    def __getstate__(self) -> dict:
        # a data process (Trainer(data_workers=)) opens the files again: open readers do not pickle
        return {**self.__dict__, "_open": {}}

    def _load(self, index: int) -> tuple[_Frames, _Labels]:
        if index in self._open:
            return self._open[index]
        from ..sources import open_source

        folder = self.videos[index]
        stack = next((folder / n for n in STACK_NAMES if (folder / n).is_file()), None)
        if stack is not None:
            import tifffile

            label_path = next((folder / n for n in LABEL_STACK_NAMES if (folder / n).is_file()), None)
            if label_path is None:
                raise ValueError(f"{folder}: found {stack.name} but no labels.tif next to it")
            source = open_source(stack)
            try:
                lab = tifffile.memmap(str(label_path))
            except Exception:  # noqa: BLE001 - compressed TIFFs cannot be memory-mapped
                lab = tifffile.imread(str(label_path))
            if lab.ndim == 2:
                lab = lab[None]
            labels = _Labels(stack=lab)
            shape = tuple(lab.shape[1:])
        else:
            images = _files(folder / "images", IMAGE_SUFFIXES)
            label_files = _files(folder / "labels", LABEL_SUFFIXES)
            if not images:
                raise ValueError(f"{folder / 'images'} holds no image files")
            source = open_source(images)
            labels = _Labels(files=label_files)
            shape = tuple(_read_label(label_files[0]).shape) if label_files else None
        if source.num_frames != len(labels):
            raise ValueError(f"{folder}: {source.num_frames} image frames but {len(labels)} label frames")
        if shape != (source.height, source.width):
            raise ValueError(f"{folder}: labels are {shape} but images are {(source.height, source.width)}")
        self._open[index] = (_Frames(source), labels)
        return self._open[index]

    def __getitem__(self, index: int):
        return self._load(int(index))


def _is_video_dir(p: Path) -> bool:
    return ((p / "images").is_dir() and (p / "labels").is_dir()) or any((p / n).is_file() for n in STACK_NAMES)
