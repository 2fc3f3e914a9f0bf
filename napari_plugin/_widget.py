"""The "SAM 2 tracker" dock widget: napari events and buttons wired to :class:`~._tracking.Tracking`.

Long work (loading a model, propagation, automatic masks) runs in ``napari.qt.threading`` workers;
while one runs, edits that would change the session are refused with a notification. Every
refusal or failure is a napari notification and changes nothing the user made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from napari.layers import Image, Labels
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QScrollArea, QSizePolicy, QVBoxLayout, QWidget

from . import _layers as L
from ._controls import WORKING_SIZES, Controls
from ._image import ImageError, check_memory, guess_axes, layer_frames, parse_channels
from ._settings import read_settings
from ._tracking import Tracking
from ._workers import USER_ERRORS, ProgressRelay, start_worker

if TYPE_CHECKING:
    import napari



class TrackerWidget(QWidget):
    """Dock widget: choose an image, click cells, propagate, correct, mark divisions, export."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = viewer
        settings = read_settings()
        self.tracking = Tracking(settings)
        self.c = Controls(settings.model, settings.device)
        self.worker = None
        self.download = ProgressRelay()  # a first use of an official model: its download, in MB
        self.download.moved.connect(self._show_progress)
        self.points = self.boxes = self.labels = None
        self._division_points: list[tuple[int, float, float]] = []
        self._build()
        self._connect()
        self._refresh_choices()
        self._set_session_controls(False)

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        for label in (self.c.model_info, self.c.status):  # long messages wrap instead of widening the dock
            label.native.setWordWrap(True)
        scroll = QScrollArea()  # docked, the widget scrolls instead of squeezing its controls
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        scroll.setWidget(self.c.container.native)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)
        # napari 0.9.0 docks widgets with a Maximum vertical policy; this one fills the dock's height
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        self.setMinimumWidth(340)

    def _connect(self) -> None:
        c = self.c
        self.viewer.layers.events.inserted.connect(self._refresh_choices)
        self.viewer.layers.events.removed.connect(self._layer_removed)
        c.image.changed.connect(self._image_chosen)
        c.start.clicked.connect(self.start)
        c.new_object.clicked.connect(self.new_object)
        c.negative.changed.connect(self._click_kind)
        c.division_clicks.changed.connect(self._click_kind)
        c.seed.clicked.connect(self.seed_from_labels)
        c.segment_all.clicked.connect(self.segment_all)
        c.propagate.clicked.connect(self.propagate)
        c.cancel.clicked.connect(self.cancel)
        c.mark_division.clicked.connect(self.mark_division)
        c.export.clicked.connect(self.export)
        c.save.clicked.connect(self.save)
        c.load.clicked.connect(self.load)

    def _refresh_choices(self, *_):
        images = [layer.name for layer in self.viewer.layers if isinstance(layer, Image)]
        seeds = [layer.name for layer in self.viewer.layers if isinstance(layer, Labels) and layer.name != L.LABELS]
        current = self.c.image.value
        self.c.image.choices = images
        self.c.seed_layer.choices = seeds
        if current in images:
            self.c.image.value = current
        elif images and current is None:
            self.c.image.value = images[-1]

    def _image_chosen(self, name):
        layer = self.viewer.layers[name] if name in self.viewer.layers else None
        if layer is not None:
            self.c.axes.value = guess_axes(layer.ndim + (1 if layer.rgb else 0), layer.rgb)

    def _set_session_controls(self, enabled: bool) -> None:
        for widget in self.c.session_controls:
            widget.enabled = enabled
        self.c.start.enabled = self.worker is None

    # ------------------------------------------------------------------ messages
    def _fail(self, err: BaseException) -> None:
        text = str(err).strip("'\"") if isinstance(err, USER_ERRORS) else f"{type(err).__name__}: {err}"
        self.c.status.value = f"⚠ {text}"
        show_error(text)

    def _info(self, text: str) -> None:
        self.c.status.value = text
        show_info(text)

    def _busy(self) -> bool:
        if self.worker is not None:
            show_warning("the tracker is busy: wait for it to finish or press Cancel")
            return True
        return False

    def current_frame(self) -> int:
        """The frame shown: the tracker's layers are (t, y, x) on the viewer's last three axes."""
        frames = self.tracking.frames
        return int(round((self.viewer.dims.point[-3] - frames.translate[0]) / frames.scale[0]))

    def current_object(self) -> int:
        return int(self.labels.selected_label) if self.labels is not None else 1

    # ------------------------------------------------------------------ start
    def start(self, *_):
        """Check the image and memory here, then load the model and open the session in a worker."""
        if self._busy():
            return
        c = self.c
        try:
            layer = self.viewer.layers[c.image.value] if c.image.value in self.viewer.layers else None
            frames = layer_frames(layer, c.axes.value, parse_channels(c.channels.value), WORKING_SIZES[c.working.value])
            check_memory(frames)
        except (ImageError, ValueError) as err:
            return self._fail(err)
        name, device, low, high = c.model.value, c.device.value, c.low.value, c.high.value

        def work():
            self.tracking.load_model(name, device, progress=lambda done, total: self.download(done >> 20, total >> 20))
            self.tracking.open(frames, layer.name, low, high)

        c.progress.max = 0  # busy: an official model may be downloading
        self._run(work, f"loading {name} (downloaded on first use) and opening '{layer.name}'…", self._started)

    def _started(self, _=None):
        t = self.tracking
        if all(str(a).lstrip("-").isdigit() for a in self.viewer.dims.axis_labels[-3:]):
            self.viewer.dims.axis_labels = (*self.viewer.dims.axis_labels[:-3], "t", "y", "x")
        self.c.model_info.value = t.model_text()
        self.labels = L.labels_layer(self.viewer, t.frames, t.labels())
        self.labels.events.paint.connect(self._painted)
        self.labels.events.selected_label.connect(self._show_current)
        self._started_layers()
        with self.points.events.data.blocker(), self.boxes.events.data.blocker():  # a new session's prompts
            self.points.data = np.empty((0, 3))
            self.boxes.data = []
        self._division_points = []
        self.labels.selected_label = t.next_object_id()
        self.viewer.layers.selection.active = self.points
        self.points.mode = "add"
        self._set_session_controls(True)
        autosave = t.autosave_path()
        note = ""
        if autosave is not None and autosave.is_file():
            self.c.session_file.value = autosave
            note = "; an autosave of this movie exists: press 'Load session' to restore it"
        self._info(f"tracking '{t.image_name}' ({t.shape[0]} frames of {t.shape[2]}×{t.shape[1]}): click a cell{note}")

    # ------------------------------------------------------------------ prompts
    def _show_current(self, *_):
        self.c.current.value = f"current object: {self.current_object()}"
        self._click_kind()

    def _click_kind(self, *_):
        if self.points is None:
            return
        division, negative = self.c.division_clicks.value, self.c.negative.value
        obj = 0 if division else self.current_object()
        self.points.selected_data = set()  # napari paints the selected points with the current colour
        self.points.feature_defaults = {"object": obj, "positive": not negative}
        self.points.current_face_color = L.DAUGHTER if division else (L.NEGATIVE if negative else L.POSITIVE)

    def new_object(self, *_):
        try:
            self.labels.selected_label = self.tracking.next_object_id()
        except ValueError as err:
            self._fail(err)

    def _points_changed(self, event):
        action = getattr(event, "action", None)
        if action == "removing":
            self._removing = [(int(round(self.points.data[i, 0])), int(self.points.features["object"].iloc[i]))
                              for i in event.data_indices]
            return
        if action == "removed":
            for frame, obj in getattr(self, "_removing", []):
                self._send_clicks(frame, obj)
            return
        if action != "added":
            return
        indices = sorted(i % len(self.points.data) for i in event.data_indices)
        for i in reversed(indices):
            frame, y, x = (float(v) for v in self.points.data[i])
            obj = int(self.points.features["object"].iloc[i])
            try:
                if self.worker is not None:
                    raise ValueError("the tracker is busy: click again when it has finished (or press Cancel)")
                self.tracking.check_inside(int(round(frame)), x, y)
            except ValueError as err:
                self._drop_point(i)
                return self._fail(err)
            if obj == 0:  # a division click: kept for 'Mark division'
                self._division_points.append((int(round(frame)), x, y))
                continue
            self._send_clicks(int(round(frame)), obj, drop_on_error=i)

    def _drop_point(self, index: int) -> None:
        self.points.selected_data = set()
        with self.points.events.data.blocker():
            self.points.data = np.delete(self.points.data, index, axis=0)

    def _send_clicks(self, frame: int, obj: int, drop_on_error: int | None = None) -> None:
        xy, positive = L.clicks_of(self.points, frame, obj)
        try:
            self.tracking.clicks(frame, obj, xy, positive)
        except (ValueError, KeyError) as err:
            if drop_on_error is not None:
                self._drop_point(drop_on_error)
            return self._fail(err)
        if len(xy) == 0:  # its last click went: the object may be gone from every frame
            self._refresh_all()
            return self._refresh_tracks()
        self._show_frame(frame)
        self._refresh_tracks()

    def _boxes_changed(self, event):
        if getattr(event, "action", None) != "added" or len(self.boxes.data) == 0:
            return
        corners = np.asarray(self.boxes.data[-1])
        frame = int(round(corners[0, 0]))
        try:
            if self.worker is not None:
                raise ValueError("the tracker is busy: draw the box again when it has finished")
            for y, x in corners[:, 1:]:
                self.tracking.check_inside(frame, x, y)
            self.tracking.box(frame, self.current_object(), corners[:, 1:])
        except ValueError as err:
            with self.boxes.events.data.blocker():
                self.boxes.selected_data = {len(self.boxes.data) - 1}
                self.boxes.remove_selected()
            return self._fail(err)
        self._show_frame(frame)
        self._refresh_tracks()

    def _painted(self, *_):
        if self.tracking.session is not None:
            self.tracking.painted.add(self.current_frame())

    def seed_from_labels(self, *_):
        if self._busy():
            return
        name = self.c.seed_layer.value
        try:
            if name not in self.viewer.layers:
                raise ValueError("choose a Labels layer to seed from (e.g. a Cellpose result)")
            data = np.asarray(self.viewer.layers[name].data if self.viewer.layers[name].ndim == 2
                              else self.viewer.layers[name].data[self.current_frame()])
            frame = self.current_frame()
            ids = self.tracking.seed_labels(frame, data)
        except (ValueError, IndexError) as err:
            return self._fail(err)
        self._show_frame(frame)
        self._refresh_tracks()
        self._info(f"seeded {len(ids)} objects on frame {frame}")

    def segment_all(self, *_):
        if self._busy():
            return
        frame = self.current_frame()
        self._run(lambda: self.tracking.segment_all(frame), f"segmenting frame {frame}…",
                  lambda ids: (self._refresh_all(), self._info(f"automatic masks: {len(ids)} objects on frame {frame}")))

    # ------------------------------------------------------------------ propagation
    def propagate(self, *_):
        if self._busy():
            return
        t, c = self.tracking, self.c
        frame = self.current_frame()
        try:
            if self.labels is not None and t.painted:
                t.apply_painted(self.labels.data)
            total = t.total_frames(c.direction.value, frame)
        except ValueError as err:
            return self._fail(err)
        direction, divisions, every = c.direction.value, c.divisions.value, c.new_cells.value
        c.progress.max, c.progress.value = max(total, 1), 0

        def work():
            done = 0
            for f in t.propagate(direction, frame, divisions, every):
                done += 1
                yield f, t.label_frame(f), done

        self._run(work, f"propagating ({direction})…", self._propagated, yielded=self._frame_done)

    def _show_progress(self, done: int, total: int) -> None:
        self.c.progress.max = max(total, done, 1)
        self.c.progress.value = done

    def _frame_done(self, item):
        frame, stack, done = item
        self._show_progress(done, self.c.progress.max)
        if self.labels is not None and self.labels in self.viewer.layers:
            self.labels.data[frame] = stack
            if frame == self.current_frame():
                self.labels.refresh()

    def _propagated(self, _=None):
        done = self.c.progress.value
        if self.tracking.cancel.is_set():
            self._info(f"cancelled after {done} frames: they are kept; press Propagate to go on")
        else:
            self._info(f"propagation done ({done} frame steps): {len(self.tracking.session.object_ids)} objects, "
                       f"{len(self.tracking.parents())} with a mother")

    def cancel(self, *_):
        self.tracking.cancel.set()

    # ------------------------------------------------------------------ divisions
    def mark_division(self, *_):
        if self._busy():
            return
        t, frame, mother = self.tracking, self.current_frame(), self.current_object()
        try:
            if t.painted and self.c.daughters_from.value == "division clicks":
                t.apply_painted(self.labels.data)
            if self.c.daughters_from.value == "painted labels":
                painted = np.asarray(self.labels.data[frame])
                ids = [int(i) for i in np.unique(painted) if i and int(i) not in t.session.object_ids]
                daughters, by = [painted == i for i in ids], "masks"
            else:
                daughters, by = [(x, y) for f, x, y in self._division_points if f == frame], "points"
            ids = t.divide(frame, mother, daughters, by)
        except (ValueError, KeyError) as err:
            return self._fail(err)
        t.painted.discard(frame)
        self._division_points = [p for p in self._division_points if p[0] != frame]
        self.tracking.autosave()
        keep = self.points.features["object"].to_numpy() != 0
        self.points.selected_data = set()
        with self.points.events.data.blocker():
            self.points.data = self.points.data[keep]
        self.c.division_clicks.value = False
        self._refresh_all()
        self._info(f"object {mother} divides on frame {frame} into {ids[0]} and {ids[1]}: propagate to track them")

    # ------------------------------------------------------------------ results
    def export(self, *_):
        if self._busy():
            return
        formats = [f for f, box in self.c.formats.items() if box.value]
        try:
            if self.tracking.painted:
                self.tracking.apply_painted(self.labels.data)
            written = self.tracking.export(self.c.export_folder.value, formats)
        except (ValueError, OSError) as err:
            return self._fail(err)
        self._info(f"exported {', '.join(p.name for p in written)} to {self.c.export_folder.value}")

    def save(self, *_):
        try:
            path = self.tracking.save(self.c.session_file.value)
        except (ValueError, OSError) as err:
            return self._fail(err)
        self._info(f"session saved to {path}")

    def load(self, *_):
        if self._busy():
            return
        try:
            self.tracking.restore(self.c.session_file.value)
        except (ValueError, OSError, FileNotFoundError) as err:
            return self._fail(err)
        L.show_prompts(self.points, self.boxes, *self.tracking.saved_prompts())
        self._refresh_all()
        self._info(f"session restored: {len(self.tracking.session.object_ids)} objects")

    # ------------------------------------------------------------------ layers in step
    def _show_frame(self, frame: int) -> None:
        if self.labels is None or self.labels not in self.viewer.layers:
            self.labels = L.labels_layer(self.viewer, self.tracking.frames, self.tracking.labels())
        self.labels.data[frame] = self.tracking.label_frame(frame)
        self.labels.refresh()

    def _refresh_tracks(self) -> None:
        """After an edit: the lineage layer follows the labels, and the session is autosaved."""
        t = self.tracking
        L.tracks_layer(self.viewer, t.frames, np.asarray(self.labels.data), t.parents())
        try:
            t.autosave()
        except (ValueError, OSError) as err:
            show_warning(f"autosave failed: {err}")

    def _refresh_all(self) -> None:
        t = self.tracking
        stack = t.labels()
        reconnect = self.labels is None or self.labels not in self.viewer.layers
        self.labels = L.labels_layer(self.viewer, t.frames, stack)
        if reconnect:
            self.labels.events.paint.connect(self._painted)
            self.labels.events.selected_label.connect(self._show_current)
        L.tracks_layer(self.viewer, t.frames, stack, t.parents())

    def _layer_removed(self, event):
        self._refresh_choices()
        if self.worker is not None and event.value in (self.labels, self.points, self.boxes):
            show_warning(f"layer '{event.value.name}' was removed while tracking: the results stay in the "
                         "session and the layer comes back when tracking stops")
        elif self.worker is not None and event.value.name == self.tracking.image_name:
            show_warning(f"image '{event.value.name}' was removed while tracking: the session keeps reading "
                         "its frames and finishes; add the image again to see them")

    # ------------------------------------------------------------------ workers
    def _run(self, work, text: str, done, yielded=None) -> None:
        """``work`` in a thread; ``done(result)`` in the GUI thread; always: layers refreshed, autosave."""
        self.c.status.value = text
        self.c.cancel.enabled = True
        self._set_session_controls(False)
        self.c.start.enabled = False
        self.worker = start_worker(work, done=done, fail=self._fail, finished=self._worker_finished, yielded=yielded)

    def _worker_finished(self):
        self.worker = None
        self.c.progress.max = max(self.c.progress.max, 1)
        self.c.cancel.enabled = False
        self.c.start.enabled = True
        if self.tracking.session is None:
            return
        self._set_session_controls(True)
        try:
            self._refresh_all()
            self.tracking.autosave()
        except (ValueError, OSError) as err:
            self._fail(err)
        if self.points is None or self.points not in self.viewer.layers:
            self._started_layers()

    def _started_layers(self):
        self.points, self.boxes = L.prompt_layers(self.viewer, self.tracking.frames)
        self.points.events.data.connect(self._points_changed)
        self.boxes.events.data.connect(self._boxes_changed)
        self._click_kind()
