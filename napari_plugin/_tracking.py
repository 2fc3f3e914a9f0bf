"""The widget's state without Qt: one model, one session over one image layer, and the edits a user
makes in napari turned into core calls (clicks, boxes, painted frames, seeds, divisions, exports).

Every method checks its input before the session changes and raises ``ValueError`` with a message
meant for the user; the widget shows it as a napari notification.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Iterator

import numpy as np

from ._image import Frames
from ._settings import TrackerSettings

EXPORT_FORMATS = ("labels", "tracks", "ctc", "geff", "session")
DIRECTIONS = ("whole movie", "forward from this frame", "backward from this frame")


class Tracking:
    """A model and a :class:`~sam2_plugins.VideoSession` on one image layer's frames."""

    def __init__(self, settings: TrackerSettings) -> None:
        self.settings = settings
        self.model = None
        self._model_key: tuple[str, str] | None = None
        self.session = None
        self.frames: Frames | None = None
        self.image_name: str | None = None
        self.painted: set[int] = set()  # frames painted by hand, not yet given to the session
        self.cancel = threading.Event()

    # ------------------------------------------------------------------ model and session
    def load_model(self, name: str, device: str, progress=None):
        """Load (once) a model by official name, bundled name or checkpoint path; ``progress(done,
        total)`` hears the bytes of a first download."""
        import sam2_plugins

        name = name.strip()
        if not name:
            raise ValueError("choose a model: an official name, micro-synthetic or a checkpoint file")
        key = (name, device)
        if self.model is None or self._model_key != key:
            self.model = sam2_plugins.load_model(name, device=device, progress=progress)
            self._model_key = key
        return self.model

    def model_text(self) -> str:
        if self.model is None:
            return "no model loaded"
        dtype = str(self.model.compute_dtype).replace("torch.", "")
        return f"{self._model_key[0]} on {self.model.device.type}, {dtype}, {self.model.image_size} px input"

    def open(self, frames: Frames, image_name: str, low: float, high: float) -> None:
        """A new session on ``frames`` (the old one, if any, is closed; autosave keeps its work)."""
        if self.model is None:
            raise ValueError("load a model first")
        if not 0 <= low < high <= 100:
            raise ValueError(f"intensity percentiles must satisfy 0 <= low < high <= 100, got {low} and {high}")
        session = self.model.open_video(frames.data, channels=frames.channels, feature_dir=self.settings.feature_dir)
        if session.source.dtype != np.uint8:  # 16-bit and float: stretched between these percentiles
            session.source.fit_intensity("percentile", low_percentile=low, high_percentile=high)
        self.close()
        self.session, self.frames, self.image_name = session, frames, image_name
        self.painted.clear()

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
        self.session = None

    def require(self):
        if self.session is None:
            raise ValueError("start tracking first: choose the image layer and press 'Start'")
        return self.session

    @property
    def shape(self) -> tuple[int, int, int]:
        s = self.require()
        return s.num_frames, s.height, s.width

    def next_object_id(self) -> int:
        from sam2_plugins.video.cells import next_free_ids

        return next_free_ids(self.require(), 1)[0]

    def label_frame(self, frame: int) -> np.ndarray:
        return self.require().labels([frame])[0]

    def labels(self) -> np.ndarray:
        return self.require().labels()

    def parents(self) -> dict[int, int]:
        return self.require().lineage.parents

    # ------------------------------------------------------------------ prompts
    def check_inside(self, frame: int, x: float, y: float) -> None:
        t, h, w = self.shape
        if not (0 <= frame < t and -0.5 <= x < w - 0.5 and -0.5 <= y < h - 0.5):
            raise ValueError(f"the click at frame {frame}, x={x:.0f}, y={y:.0f} is outside the image "
                             f"({t} frames of {w}×{h} pixels): it was not used")

    def clicks(self, frame: int, obj_id: int, points: np.ndarray, positive: np.ndarray) -> None:
        """All clicks (x, y) of ``obj_id`` on ``frame`` (they replace its earlier ones there)."""
        s = self.require()
        if len(points) == 0:
            if obj_id in s.object_ids and frame in s.tracks[obj_id].prompted_frames():
                s.clear_prompts(frame, obj_id)
            return
        s.add_points(frame, obj_id, np.asarray(points, float), np.asarray(positive, int).tolist())

    def box(self, frame: int, obj_id: int, corners: np.ndarray) -> None:
        """A rectangle's corners (N, 2) as (y, x) -> a box prompt for ``obj_id``."""
        ys, xs = corners[:, 0], corners[:, 1]
        self.require().add_box(frame, obj_id, [xs.min(), ys.min(), xs.max(), ys.max()])

    def seed_labels(self, frame: int, labels: np.ndarray) -> list[int]:
        """Every label of an (H, W) image (Cellpose, drawn by hand) becomes an object on ``frame``."""
        s = self.require()
        labels = np.asarray(labels)
        if labels.shape != (s.height, s.width):
            raise ValueError(f"the Labels layer's frame is {labels.shape[1]}×{labels.shape[0]} pixels but the "
                             f"tracked frames are {s.width}×{s.height}: use a layer made on this image"
                             f" (at working size 1/{self.frames.bin})")
        if not labels.any():
            raise ValueError(f"the Labels layer is empty on frame {frame}: nothing to seed")
        return s.add_label_image(frame, labels.astype(np.int64))

    def segment_all(self, frame: int) -> list[int]:
        return self.require().add_automatic_masks(frame)

    def apply_painted(self, stack: np.ndarray) -> list[int]:
        """Frames painted in the results layer become mask prompts for the objects that changed."""
        s = self.require()
        done = []
        for frame in sorted(self.painted):
            painted = np.asarray(stack[frame])
            ours = s.labels([frame])[0]
            changed = np.unique(np.concatenate([painted[painted != ours], ours[painted != ours]]))
            for oid in (int(i) for i in changed if i):
                mask = painted == oid
                if not mask.any():
                    continue  # erased: the next propagation decides; nothing to prompt with
                track = s.tracks.get(oid)
                if track is not None and not track.alive(frame):
                    raise ValueError(f"object {oid} does not live on frame {frame} (it divided or ended): "
                                     "paint a new id or a daughter instead")
                s.add_mask(frame, oid, mask)
            done.append(frame)
        self.painted.clear()
        return done

    def divide(self, frame: int, mother: int, daughters: list[np.ndarray], by: str) -> tuple[int, int]:
        """``mother`` divides on ``frame`` into two daughters given as masks or as clicks."""
        s = self.require()
        if mother not in s.object_ids:
            raise ValueError(f"object {mother} is not tracked: select the mother's label first")
        if len(daughters) != 2:
            raise ValueError(f"a division needs two daughters on frame {frame}, got {len(daughters)}: "
                             "click once in each daughter (division clicks) or paint each with a new label")
        if by == "masks":
            return s.divide(frame, mother, masks=daughters)
        return s.divide(frame, mother, points=[[list(p)] for p in daughters])

    # ------------------------------------------------------------------ propagation
    def propagate(self, direction: str, frame: int, divisions: bool, new_cells_every: int,
                  progress=None) -> Iterator[int]:
        """Track (see :data:`DIRECTIONS`); yields each finished frame. ``self.cancel`` stops it
        between frames, keeping what is done; 'whole movie' then goes on where it stopped."""
        from sam2_plugins.video import CellEvents, CellOptions

        s = self.require()
        self.cancel.clear()
        if direction == DIRECTIONS[0]:
            events = None
            if divisions or new_cells_every:
                events = CellEvents(s, CellOptions(divisions=divisions, new_cells_every=new_cells_every or None))
            results = s.propagate_all(resume=True, events=events, progress=progress, cancel=self.cancel)
        elif direction in DIRECTIONS[1:]:
            results = s.propagate(frame, reverse=direction == DIRECTIONS[2], progress=progress, cancel=self.cancel)
        else:
            raise ValueError(f"unknown direction {direction!r}")
        for result in results:
            yield result.frame_index

    def total_frames(self, direction: str, frame: int) -> int:
        t = self.shape[0]
        return {DIRECTIONS[0]: t, DIRECTIONS[1]: t - frame, DIRECTIONS[2]: frame + 1}[direction]

    # ------------------------------------------------------------------ saving
    def export(self, folder: "str | Path", formats: list[str]) -> list[Path]:
        from sam2_plugins.cli import check_writable, export_session

        bad = sorted(set(formats) - set(EXPORT_FORMATS))
        if bad or not formats:
            raise ValueError(f"choose export formats among {', '.join(EXPORT_FORMATS)}")
        folder = Path(folder).expanduser()
        check_writable(folder)
        return export_session(self.require(), folder, list(formats))

    def save(self, path: "str | Path") -> Path:
        from sam2_plugins import save_session

        return save_session(self.require(), Path(path).expanduser())

    def restore(self, path: "str | Path") -> None:
        """Load a saved session onto the current frames (the same movie, the same model)."""
        from sam2_plugins.video.session_file import read_session_file

        s = self.require()
        meta, tensors = read_session_file(Path(path).expanduser())
        try:
            s.load_state_dict({"meta": meta, "tensors": tensors})
        except ValueError as err:
            raise ValueError(f"{Path(path).name} {err}") from None
        self.painted.clear()

    def saved_prompts(self) -> tuple[list[tuple], list[tuple]]:
        """The session's prompts in frame pixels, to draw again after a restore: clicks as
        (frame, y, x, object, positive), boxes as (frame, x0, y0, x1, y1, object)."""
        s = self.require()
        to_frame = np.array([s.width, s.height], np.float64) / s.model.image_size
        clicks, boxes = [], []
        for oid in s.object_ids:
            for frame, prompt in s.tracks[oid].points.items():
                xy = prompt.coords[0].cpu().numpy() * to_frame  # (N, 2) model-input -> frame pixels
                kinds = prompt.labels[0].cpu().numpy()
                clicks += [(frame, y, x, oid, bool(k)) for (x, y), k in zip(xy, kinds) if k in (0, 1)]
                corners = xy[np.isin(kinds, (2, 3))]
                if len(corners) == 2:
                    boxes.append((frame, *corners[0], *corners[1], oid))
        return clicks, boxes

    def autosave_path(self) -> Path | None:
        """One autosave per movie: named after the layer, its shape and its first frame's pixels."""
        if self.session is None or self.frames is None:
            return None
        first = np.ascontiguousarray(np.asarray(self.frames.data[0]))
        digest = hashlib.blake2b(first.tobytes() + repr((self.shape, self.frames.bin, self.frames.channels)).encode(),
                                 digest_size=8).hexdigest()
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in (self.image_name or "movie"))[:40]
        return self.settings.autosave_dir / f"{safe}-{digest}.sam2session"

    def autosave(self) -> Path | None:
        path = self.autosave_path()
        if path is None or not self.session.object_ids:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        return self.save(path)
