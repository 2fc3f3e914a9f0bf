"""The tracker's controls (magicgui widgets), grouped in the order a user works: image, model,
prompts, propagation, divisions, results. Behaviour lives in ``_widget.py``."""

from __future__ import annotations

from magicgui import widgets as w

from ._image import AXES
from ._tracking import DIRECTIONS, EXPORT_FORMATS

WORKING_SIZES = {"full size": 1, "1/2": 2, "1/4": 4, "1/8": 8}
DAUGHTERS_FROM = ("division clicks", "painted labels")


class Controls:
    """Every control as an attribute, and ``container``: all of them in titled groups."""

    def __init__(self, model: str, device: str) -> None:
        self.image = w.ComboBox(label="image layer", choices=[], nullable=True,
                                tooltip="T×Y×X time-lapse (or T×Y×X×C, C×T×Y×X, a Z stack as frames)")
        self.axes = w.ComboBox(label="axes", choices=AXES)
        self.channels = w.LineEdit(label="channels", value="",
                                   tooltip="1 to 3 channel indices, e.g. '0' or '1,0' (empty: the first three)")
        self.low = w.FloatSpinBox(label="low %", value=1.0, min=0.0, max=50.0, step=0.5,
                                  tooltip="16-bit and float data: this percentile becomes black")
        self.high = w.FloatSpinBox(label="high %", value=99.8, min=50.0, max=100.0, step=0.1,
                                   tooltip="16-bit and float data: this percentile becomes white")
        self.working = w.ComboBox(label="working size", choices=list(WORKING_SIZES), value="full size",
                                  tooltip="track every n-th pixel: for frames too large for memory")
        self.model = w.LineEdit(label="model", value=model,
                                tooltip="sam2.1-hiera-tiny / -small / -base-plus / -large (downloaded on first use), "
                                        "micro-synthetic (shipped), or a checkpoint file path")
        self.device = w.ComboBox(label="device", choices=["auto", "cpu", "cuda", "mps"], value=device)
        self.start = w.PushButton(text="Start tracking this image")
        self.model_info = w.Label(value="no model loaded")

        self.current = w.Label(value="current object: none")
        self.new_object = w.PushButton(text="New object")
        self.negative = w.CheckBox(text="negative clicks (background)", value=False)
        self.seed_layer = w.ComboBox(label="seed from", choices=[], nullable=True,
                                     tooltip="a Labels layer (Cellpose, drawn by hand): every cell of this frame")
        self.seed = w.PushButton(text="Seed from labels (this frame)")
        self.segment_all = w.PushButton(text="Segment all (this frame)")

        self.direction = w.ComboBox(label="propagate", choices=DIRECTIONS)
        self.divisions = w.CheckBox(text="find divisions while tracking", value=True)
        self.new_cells = w.SpinBox(label="new cells every", value=0, min=0, max=1000,
                                   tooltip="frames between searches for cells no track covers (0: never)")
        self.propagate = w.PushButton(text="Propagate")
        self.cancel = w.PushButton(text="Cancel", enabled=False)
        self.progress = w.ProgressBar(label="progress", value=0, min=0, max=1)

        self.division_clicks = w.CheckBox(text="division clicks (one per daughter)", value=False)
        self.daughters_from = w.ComboBox(label="daughters from", choices=DAUGHTERS_FROM)
        self.mark_division = w.PushButton(text="Mark division here",
                                           tooltip="the current object divides on this frame into the two daughters")

        self.export_folder = w.FileEdit(label="export to", mode="d", value="")
        self.formats = {f: w.CheckBox(text=f, value=f != "session") for f in EXPORT_FORMATS}
        self.export = w.PushButton(text="Export")
        self.session_file = w.FileEdit(label="session file", mode="w", filter="*.sam2session", value="")
        self.save = w.PushButton(text="Save session")
        self.load = w.PushButton(text="Load session")
        self.status = w.Label(value="")

        def group(title, *items, layout="vertical"):
            return w.Container(widgets=[w.Label(value=f"<b>{title}</b>"), *items], layout=layout, labels=True)

        row = lambda *items: w.Container(widgets=list(items), layout="horizontal", labels=False)  # noqa: E731
        self.container = w.Container(widgets=[
            group("1. Image", self.image, self.axes, self.channels, self.low, self.high, self.working),
            group("2. Model", self.model, self.device, self.start, self.model_info),
            group("3. Prompts", self.current, self.new_object, self.negative, self.seed_layer, self.seed,
                  self.segment_all),
            group("4. Propagate", self.direction, self.divisions, self.new_cells, row(self.propagate, self.cancel),
                  self.progress),
            group("5. Divisions", self.division_clicks, self.daughters_from, self.mark_division),
            group("6. Results", self.export_folder, row(*list(self.formats.values())[:3]),
                  row(*list(self.formats.values())[3:]), self.export, self.session_file,
                  row(self.save, self.load)),
            self.status,
        ], labels=False)
        self.session_controls = [self.new_object, self.seed, self.segment_all, self.propagate, self.mark_division,
                                 self.export, self.save, self.load]
