"""One movie tracked and exported as ``sam2-plugins track`` does it: the steps the command and every
batch worker share, so that a batch result folder holds exactly what ``track`` writes."""

from __future__ import annotations

from pathlib import Path

FORMATS = ("labels", "masks", "overlay", "ctc", "tracks", "geff", "session")
DEFAULT_FORMATS = "labels,tracks,ctc,geff,session"
SESSION_FILE = "session.sam2session"


def parse_formats(text: str) -> list[str]:
    """The comma-separated export list of ``--format``, checked against :data:`FORMATS`."""
    formats = [f.strip() for f in text.split(",") if f.strip()]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown export format(s) {', '.join(unknown)}; choose among {', '.join(FORMATS)}")
    return formats


def check_writable(out: Path) -> None:
    """Fail now, not after tracking, when the output folder cannot be made or written to."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".sam2-plugins-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise OSError(f"cannot write to the output folder {out}: {err.strerror or err}") from None


def new_cells_period(seed: str | None, given: int | None) -> int | None:
    """How often new cells are looked for: as given, else every 5 frames when seeded from masks."""
    return given if given is not None else (5 if seed else None)


def seed_session(session, *, prompts=None, seed: str | None = None, seed_labels=None, seed_frame: int = 0) -> None:
    """Mark the objects to track: a prompts file's prompts, a label image, or automatic masks
    (``seed == "auto"``) on ``seed_frame``."""
    from ..prompts_file import apply_prompts

    if prompts is not None:
        apply_prompts(session, prompts)
    if seed_labels is not None:
        session.add_label_image(seed_frame, seed_labels)
    elif seed == "auto":
        if not session.add_automatic_masks(seed_frame):
            raise ValueError(f"automatic masks found no object on frame {seed_frame}")


def cell_events(session, *, divisions: bool, new_cells_every: int | None):
    """The division and new-cell finder that runs while tracking, or None when both are off."""
    from ..video.cells import CellEvents, CellOptions

    if not (divisions or new_cells_every):
        return None
    return CellEvents(session, CellOptions(divisions=divisions, new_cells_every=new_cells_every))


def export_session(session, out: Path, formats: list[str], *, fps: float = 10.0,
                   progress=None, cancel=None) -> list[Path]:
    """Write the chosen exports of a tracked session into ``out``, with its lineage; returns what
    was written."""
    from .. import exports
    from ..video import save_session

    out = Path(out)
    parents = session.lineage.parents
    labels = None
    if set(formats) - {"overlay", "session"}:  # specks go here, once: every export shows these pixels
        labels = exports.clean_labels(exports.session_labels(session))
    kept = {"min_area": 0}  # already cleaned
    written: list[Path] = []
    if "labels" in formats:
        written.append(exports.write_label_stack(out / "labels.tif", labels, **kept))
    if "masks" in formats:
        written.append(exports.write_object_masks(out / "masks", labels, object_ids=session.object_ids, **kept))
    if "ctc" in formats:
        exports.write_ctc(out / "ctc", labels, parents, **kept)
        written.append(out / "ctc")
    if "tracks" in formats:
        written.append(exports.write_tracks_csv(out / "tracks.csv", labels, parents, **kept))
    if "geff" in formats:
        linked = out / "labels.tif" if "labels" in formats else None
        written.append(exports.write_geff(out / "tracks.geff", labels, parents, labels_path=linked, **kept))
    if "overlay" in formats:
        video = exports.export_overlay_video_from_session(
            session, out / "overlay.mp4", fps=fps, progress=progress, cancel=cancel
        )
        if video is not None:
            written.append(video)
    if "session" in formats:
        written.append(save_session(session, out / SESSION_FILE))
    return [Path(p) for p in written]
