"""Exports (sam2_plugins.exports), each read back with the library its field uses:
tifffile (label stacks, CTC masks), Pillow (PNG masks), PyAV (overlay video),
py-ctcmetrics (CTC validation and TRA/SEG scores), geff (GEFF graphs), plus
atomicity under cancel, exceptions and SIGKILL.  The shared speck/gap/lineage rule
across exports is tested in test_export_lineage.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import warnings
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest
import tifffile
from PIL import Image
from scipy import ndimage as ndi

from sam2_plugins.exports import (
    TRACKS_CSV_COLUMNS,
    clean_labels,
    ctc_mask_name,
    export_ctc_from_session,
    export_geff_from_session,
    export_label_stack_from_session,
    export_object_masks_from_session,
    export_overlay_video_from_session,
    export_tracks_csv_from_session,
    object_colors,
    object_mask_name,
    overlay_labels,
    tracks_table,
    write_ctc,
    write_label_stack,
    write_object_masks,
    write_overlay_video,
    write_tracks_csv,
)
from sam2_plugins.synthetic import TimeLapse, make_timelapse

T, H, W = 12, 96, 96
GAP = (5, 6)  # frames on which the chosen cell is missing (left the field and came back)


@lru_cache(maxsize=None)
def timelapse() -> TimeLapse:
    tl = make_timelapse(0, num_frames=T, height=H, width=W, num_cells=6)
    assert tl.children(), "the test time-lapse must contain a division"
    return tl


def gap_cell(tl: TimeLapse) -> int:
    """A cell without lineage that lives through the whole sequence."""
    kids = tl.children()
    return next(k for k, tr in sorted(tl.tracks.items())
                if tr.first == 0 and tr.last == T - 1 and tr.parent == 0 and k not in kids)


def gapped_labels(tl: TimeLapse) -> np.ndarray:
    """The synthetic labels with one cell missing on GAP frames (same id before and after)."""
    lab = tl.labels.astype(np.uint16)
    g = gap_cell(tl)
    for t in GAP:
        lab[t][lab[t] == g] = 0
    return lab


def read_dir(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def squares(n: int = 6, h: int = 45, w: int = 61) -> np.ndarray:
    lab = np.zeros((n, h, w), np.uint16)
    for t in range(n):
        lab[t, 8:28, 6 + t:26 + t] = 3
        lab[t, 30:42, 36:58] = 70
    return lab


# ---------------------------------------------------------------------------- label stacks
def test_label_stack_uint16_imagej_tyx(tmp_path):
    lab = timelapse().labels
    p = write_label_stack(tmp_path / "labels.tif", lab, min_area=0)  # 0: every pixel as given
    with tifffile.TiffFile(p) as tif:
        assert tif.is_imagej
        series = tif.series[0]
        assert series.axes == "TYX" and series.shape == lab.shape
        data = series.asarray()
        assert tif.imagej_metadata["frames"] == T
    assert data.dtype == np.uint16
    np.testing.assert_array_equal(data, lab)
    assert os.listdir(tmp_path) == ["labels.tif"]
    # default: the shared speck rule (cell 3 leaves as a 5-px sliver on frame 3, cell 11 enters as 1 px)
    cleaned = tifffile.imread(write_label_stack(tmp_path / "labels.tif", lab))
    np.testing.assert_array_equal(cleaned, clean_labels(lab))
    changed = np.argwhere(cleaned != lab)
    assert {(int(t), int(lab[t, y, x])) for t, y, x in changed} == {(3, 3), (6, 11)}
    assert not (cleaned[3] == 3).any() and not (cleaned[6] == 11).any()


def test_label_stack_uint32_forced_and_compressed(tmp_path):
    lab = squares().astype(np.uint32)
    lab[lab == 70] = 70_000  # beyond uint16: switches to uint32 (plain tifffile TIFF, axes TYX)
    p = write_label_stack(tmp_path / "big.tif", lab, compression="zlib")
    with tifffile.TiffFile(p) as tif:
        assert tif.series[0].axes == "TYX"
        assert tif.pages[0].compression == tifffile.COMPRESSION.ADOBE_DEFLATE
        data = tif.asarray()
    assert data.dtype == np.uint32
    np.testing.assert_array_equal(data, lab)
    small = write_label_stack(tmp_path / "small.tif", squares(), dtype=np.uint32)
    assert tifffile.imread(small).dtype == np.uint32
    with pytest.raises(ValueError, match="does not fit"):
        write_label_stack(tmp_path / "u8.tif", lab, dtype=np.uint8)
    with pytest.raises(TypeError):
        write_label_stack(tmp_path / "f.tif", lab.astype(np.float32))
    assert not (tmp_path / "u8.tif").exists() and not (tmp_path / "f.tif").exists()


class FailingStack:
    """Array-like label stack whose frame `fail_at` raises, to interrupt a write mid-way."""

    def __init__(self, lab, fail_at):
        self.lab, self.fail_at = lab, fail_at
        self.shape, self.dtype = lab.shape, lab.dtype
        self.reads = 0

    def __getitem__(self, t):
        self.reads += 1
        if t == self.fail_at and self.reads > len(self.lab):  # the id scan passes, the write fails
            raise RuntimeError("disk on fire")
        return self.lab[t]


def test_label_stack_error_mid_write_keeps_previous(tmp_path):
    p = tmp_path / "labels.tif"
    write_label_stack(p, squares())
    before = p.read_bytes()
    stack = FailingStack(squares() * 2, fail_at=4)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_label_stack(p, stack)
    assert p.read_bytes() == before
    assert os.listdir(tmp_path) == ["labels.tif"]


# ---------------------------------------------------------------------------- PNG masks
def test_object_masks_png_roundtrip(tmp_path):
    lab = timelapse().labels
    ids = sorted(set(np.unique(lab).tolist()) - {0})
    folder = write_object_masks(tmp_path / "masks", lab, object_ids=ids + [99])
    lab = clean_labels(lab)  # masks show the pixels every export shows (specks dropped)
    names = sorted(os.listdir(folder))
    assert len(names) == (len(ids) + 1) * T
    assert object_mask_name(7, 3, T) == "obj007_t0003.png" and "obj099_t0011.png" in names
    for oid in ids[:4] + [99]:
        for t in (0, 5, T - 1):
            with Image.open(folder / object_mask_name(oid, t, T)) as im:
                assert im.format == "PNG" and im.mode == "L" and im.size == (W, H)
                a = np.asarray(im)
            assert set(np.unique(a).tolist()) <= {0, 255}
            np.testing.assert_array_equal(a == 255, lab[t] == oid)
    sparse = write_object_masks(tmp_path / "sparse", lab, skip_empty=True)
    expected = sum(len(set(np.unique(lab[t]).tolist()) - {0}) for t in range(T))
    assert len(os.listdir(sparse)) == expected


def test_object_masks_replace_previous_and_refuse_foreign(tmp_path):
    folder = tmp_path / "masks"
    write_object_masks(folder, squares(n=6))
    two = squares(n=2)
    write_object_masks(folder, np.where(two == 3, two, 0))
    assert sorted(os.listdir(folder)) == ["obj003_t0000.png", "obj003_t0001.png"]  # old export gone
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="notes.txt"):
        write_object_masks(mine, squares())
    assert os.listdir(mine) == ["notes.txt"]
    assert sorted(os.listdir(tmp_path)) == ["masks", "mine"]


# ---------------------------------------------------------------------------- overlay video
def decode(path) -> tuple[list[np.ndarray], SimpleNamespace]:
    """All frames as RGB arrays, plus stream facts, read with PyAV."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        info = SimpleNamespace(codec=s.codec_context.name, pix_fmt=s.codec_context.pix_fmt,
                               width=s.width, height=s.height, rate=s.average_rate)
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return frames, info


def test_overlay_video_roundtrip_colours(tmp_path):
    tl = timelapse()
    lab = tl.labels[:, :95, :93]  # odd size: padded to 96 x 94
    grey = tl.frames[:, :95, :93]
    seen = []
    p = write_overlay_video(tmp_path / "ov.mp4", (g for g in grey), lab, fps=5, alpha=0.5,
                            progress=lambda d, n: seen.append((d, n)))
    frames, info = decode(p)
    assert (info.codec, info.pix_fmt, info.width, info.height) == ("h264", "yuv420p", 94, 96)
    assert info.rate == 5 and len(frames) == T
    assert seen == [(i + 1, T) for i in range(T)]
    for t in (0, 6, T - 1):
        got = frames[t][:95, :93].astype(np.float32)
        want = overlay_labels(grey[t], lab[t], alpha=0.5).astype(np.float32)
        plain = np.repeat(grey[t][..., None], 3, -1).astype(np.float32)
        err = np.abs(got - want).mean(-1)
        near_edge = ndi.binary_dilation(ndi.morphological_gradient(lab[t], size=3) > 0)
        assert err[~near_edge].mean() < 3.0 and err.mean() < 6.0  # 1-px contours blur in yuv420p
        for oid in np.unique(lab[t])[1:]:
            inner = ndi.binary_erosion(lab[t] == oid, iterations=2)
            if inner.sum() < 20:
                continue
            colour = got[inner].mean(0)
            assert np.abs(colour - want[inner].mean(0)).max() < 10, (t, oid)
            assert np.abs(colour - plain[inner].mean(0)).max() > 25, (t, oid)  # the overlay shows
        bg = ndi.binary_erosion(lab[t] == 0, iterations=3)
        assert np.abs(got[bg] - plain[bg]).mean() < 3.0


def test_overlay_video_float_callable_and_colour_where_labels_are(tmp_path):
    lab = squares()
    p = write_overlay_video(tmp_path / "v.mp4", lambda i: np.zeros((45, 61), np.float32), lab, alpha=1.0)
    frames, info = decode(p)
    assert (info.width, info.height, len(frames)) == (62, 46, len(lab))
    c3, c70 = object_colors([3, 70]).astype(np.float32)
    f = frames[2].astype(np.float32)
    assert np.abs(f[12:24, 12:24].mean((0, 1)) - c3).max() < 10
    assert np.abs(f[33:39, 40:54].mean((0, 1)) - c70).max() < 10
    assert f[2:6, 2:6].max() < 12 and f[44:, :].max() < 12  # background and padding stay black


def test_overlay_video_cancel_keeps_previous(tmp_path):
    p = tmp_path / "v.mp4"
    write_overlay_video(p, None, squares())
    before = p.read_bytes()
    stop = threading.Event()
    out = write_overlay_video(p, None, squares() * 2, progress=lambda d, n: d >= 3 and stop.set(), cancel=stop)
    assert out is None and p.read_bytes() == before
    assert write_overlay_video(p, None, squares(), cancel=lambda: True) is None
    assert p.read_bytes() == before and os.listdir(tmp_path) == ["v.mp4"]
    with pytest.raises(ValueError, match="ran out"):
        write_overlay_video(p, [np.zeros((45, 61, 3), np.uint8)], squares())
    assert p.read_bytes() == before and os.listdir(tmp_path) == ["v.mp4"]


# The child imports only sam2_plugins.exports (a bare parent package skips torch: ~3 s faster).
SCRIPT_HEADER = """\
import importlib.util, sys, time, types
import numpy as np
pkg = types.ModuleType("sam2_plugins")
pkg.__path__ = list(importlib.util.find_spec("sam2_plugins").submodule_search_locations)
sys.modules["sam2_plugins"] = pkg
from sam2_plugins.exports import write_overlay_video, write_object_masks
"""

KILL_SCRIPTS = {
    "video": """
        lab = np.zeros((400, 32, 32), np.uint8); lab[:, 8:20, 8:20] = 1
        def frame(i):
            time.sleep(0.01)
            return np.zeros((32, 32, 3), np.uint8)
        write_overlay_video(sys.argv[1], frame, lab, progress=lambda d, n: print(d, flush=True))
    """,
    "folder": """
        import PIL.Image
        save, count = PIL.Image.Image.save, [0]
        def slow_save(self, *a, **k):
            save(self, *a, **k); count[0] += 1; print(count[0], flush=True); time.sleep(0.02)
        PIL.Image.Image.save = slow_save
        lab = np.zeros((400, 16, 16), np.uint8); lab[:, 4:9, 4:9] = 5
        write_object_masks(sys.argv[1], lab)
    """,
}


@pytest.mark.parametrize("kind", ["video", "folder"])
def test_sigkill_mid_write_keeps_previous(tmp_path, kind):
    target = tmp_path / ("out.mp4" if kind == "video" else "masks")
    if kind == "video":
        write_overlay_video(target, None, squares())
        snapshot = lambda: target.read_bytes()  # noqa: E731
    else:
        write_object_masks(target, squares())
        snapshot = lambda: read_dir(target)  # noqa: E731
    before = snapshot()
    script = SCRIPT_HEADER + textwrap.dedent(KILL_SCRIPTS[kind])
    with subprocess.Popen([sys.executable, "-c", script, str(target)], stdout=subprocess.PIPE, text=True) as proc:
        try:
            for line in proc.stdout:
                if int(line) >= 60:  # well into the write (video: past x264's lookahead)
                    break
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert snapshot() == before  # byte-identical previous output under the final name
    leftovers = [n for n in os.listdir(tmp_path) if n != target.name]
    assert leftovers and all(n.startswith(f".{target.name}.") and n.endswith(".tmp") for n in leftovers)
    # the next export removes the dead writer's temporary
    if kind == "video":
        write_overlay_video(target, None, squares(n=2))
        assert len(decode(target)[0]) == 2
    else:
        write_object_masks(target, squares(n=2))
        assert len(os.listdir(target)) == 4
    assert os.listdir(tmp_path) == [target.name]


# ---------------------------------------------------------------------------- CTC
def write_ctc_gt(root: Path, tl: TimeLapse) -> Path:
    """CTC ground truth (TRA + SEG) of the gapped time-lapse, written by hand: the gap cell
    is split into two GT tracks, the later one a child of the earlier (CTC convention)."""
    lab = gapped_labels(tl)
    g, new = gap_cell(tl), int(lab.max()) + 1
    for t in range(GAP[-1] + 1, T):
        lab[t][lab[t] == g] = new
    rows = {k: (tr.first, tr.last, tr.parent) for k, tr in tl.tracks.items()}
    rows[g] = (0, GAP[0] - 1, 0)
    rows[new] = (GAP[-1] + 1, T - 1, g)
    (root / "TRA").mkdir(parents=True)
    (root / "SEG").mkdir()
    (root / "TRA" / "man_track.txt").write_text("".join(f"{k} {b} {e} {p}\n" for k, (b, e, p) in sorted(rows.items())))
    for t in range(T):
        tifffile.imwrite(root / "TRA" / f"man_track{t:03d}.tif", lab[t])
    for t in (0, 4, 8, T - 1):
        tifffile.imwrite(root / "SEG" / f"man_seg{t:03d}.tif", lab[t])
    return root


def score(res: Path, gt: Path) -> dict:
    from ctc_metrics import evaluate_sequence

    return evaluate_sequence(str(res), str(gt), metrics=["Valid", "DET", "SEG", "TRA"], threads=1)


def validate(res: Path) -> int:
    from ctc_metrics import validate_sequence

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any complaint of the validator fails the test
        return validate_sequence(str(res), threads=1)["Valid"]


def test_ctc_files_gap_split_and_lineage(tmp_path):
    tl = timelapse()
    lab = gapped_labels(tl)
    g = gap_cell(tl)
    exp = write_ctc(tmp_path / "01_RES", lab, tl.lineage)
    names = sorted(os.listdir(exp.folder))
    assert names == [f"mask{t:03d}.tif" for t in range(T)] + ["res_track.txt"]
    rows = np.loadtxt(exp.folder / "res_track.txt", dtype=np.int64, ndmin=2)
    np.testing.assert_array_equal(rows, exp.table())
    table = {int(r[0]): tuple(int(v) for v in r[1:]) for r in rows}
    new = int(lab.max()) + 1
    assert table[g] == (0, GAP[0] - 1, 0) and table[new] == (GAP[-1] + 1, T - 1, g)
    assert exp.source_ids()[new] == g
    for child, parent in tl.lineage.items():
        if parent:
            assert table[child][2] == parent and table[parent][1] < table[child][0]
    assert table[11][:2] == (7, T - 1) and table[3][:2] == (0, 2)  # specks: entering / leaving slivers
    clean = clean_labels(lab)
    for t in range(T):
        m = tifffile.imread(exp.folder / ctc_mask_name(t, T))
        assert m.dtype == np.uint16 and m.shape == (H, W)
        want = clean[t].copy()
        if t > GAP[-1]:
            want[want == g] = new
        np.testing.assert_array_equal(m, want)
        for k, (b, e, _) in table.items():
            assert (k in m) == (b <= t <= e)
    assert validate(exp.folder) == 1


def test_ctc_scores_perfect_and_degraded(tmp_path):
    tl = timelapse()
    gt = write_ctc_gt(tmp_path / "01_GT", tl)
    lab = gapped_labels(tl)
    perfect = write_ctc(tmp_path / "perfect" / "01_RES", lab, tl.lineage, min_area=0)  # GT has 1-px specks
    s = score(perfect.folder, gt)
    assert s["Valid"] == 1
    assert s["TRA"] == pytest.approx(1.0) and s["SEG"] == pytest.approx(1.0) and s["DET"] == pytest.approx(1.0)
    # degraded: masks eroded by 2 px, two long-lived cells swap identities half way, lineage lost
    bad = np.zeros_like(lab)
    for t in range(T):
        for oid in np.unique(lab[t])[1:]:
            bad[t][ndi.binary_erosion(lab[t] == oid, iterations=2)] = oid
    a, b = [k for k, tr in sorted(tl.tracks.items()) if tr.first == 0 and tr.last == T - 1][-2:]
    late = bad[T // 2:]
    ia, ib = late == a, late == b
    late[ia], late[ib] = b, a
    degraded = write_ctc(tmp_path / "degraded" / "01_RES", bad)
    d = score(degraded.folder, gt)
    assert d["Valid"] == 1
    assert d["TRA"] < 0.98 and d["SEG"] < 0.9
    assert d["TRA"] < s["TRA"] and d["SEG"] < s["SEG"]
    print(f"CTC perfect TRA={s['TRA']:.4f} SEG={s['SEG']:.4f}; degraded TRA={d['TRA']:.4f} SEG={d['SEG']:.4f}")


def test_ctc_fragments_parent_overlap_and_many_frames(tmp_path):
    lab = np.zeros((3, 20, 20), np.uint16)
    lab[:, 2:8, 2:8] = 4
    lab[1, 15:17, 15:17] = 4  # a stray second piece of cell 4 on frame 1
    lab[1:, 10:14, 2:6] = 9  # "daughter" of 4, but 4 does not end before it starts
    with pytest.warns(UserWarning, match="parent 4"):
        keep = write_ctc(tmp_path / "keep", lab, {9: 4}, min_area=0)
    assert keep.table().tolist() == [[4, 0, 2, 0], [9, 1, 2, 0]]
    np.testing.assert_array_equal(tifffile.imread(keep.folder / "mask001.tif"), lab[1])
    assert validate(keep.folder) == 1
    with pytest.warns(UserWarning, match="parent 4"):
        default = write_ctc(tmp_path / "default", lab, {9: 4})  # the 4-px piece is a speck: dropped
    assert default.table().tolist() == [[4, 0, 2, 0], [9, 1, 2, 0]]
    m1 = tifffile.imread(default.folder / "mask001.tif")
    assert m1[15:17, 15:17].max() == 0 and (m1 == 4).sum() == 36
    with pytest.warns(UserWarning):
        largest = write_ctc(tmp_path / "largest", lab, {9: 4}, fragments="largest", min_area=0)
    m1 = tifffile.imread(largest.folder / "mask001.tif")
    assert m1[15:17, 15:17].max() == 0 and (m1 == 4).sum() == 36
    assert validate(largest.folder) == 1
    assert ctc_mask_name(999, 1000) == "mask999.tif" and ctc_mask_name(0, 1001) == "mask0000.tif"
    many = np.zeros((1001, 4, 4), np.uint16)
    many[:, 1, 1] = 1
    out = write_ctc(tmp_path / "many", many, min_area=0)  # 1-px objects: keep them
    assert sorted(os.listdir(out.folder))[:2] == ["mask0000.tif", "mask0001.tif"]
    assert len(os.listdir(out.folder)) == 1002 and out.table().tolist() == [[1, 0, 1000, 0]]


# ---------------------------------------------------------------------------- tracks
def test_tracks_table_and_csv(tmp_path):
    tl = timelapse()
    tracks, graph = tracks_table(tl.labels, tl.lineage, min_area=0)  # no gaps, no specks dropped: the truth
    assert tracks.shape[1] == 4 and tracks.dtype == np.float64
    np.testing.assert_allclose(tracks, tl.track_points())
    assert graph == tl.napari_graph()
    lab = gapped_labels(tl)
    p = write_tracks_csv(tmp_path / "tracks.csv", lab, tl.lineage)
    header = p.read_text().splitlines()[0]
    assert tuple(header.split(",")) == TRACKS_CSV_COLUMNS == (
        "track_id", "t", "y", "x", "area", "parent_id", "object_id")
    data = np.loadtxt(p, delimiter=",", skiprows=1, ndmin=2)
    gap_tracks, gap_graph = tracks_table(lab, tl.lineage)
    np.testing.assert_allclose(data[:, :4], gap_tracks, atol=1e-3)
    # the gap splits the gap cell into two tracks, the later one a child of the earlier (as in CTC)
    g, new = gap_cell(tl), int(lab.max()) + 1
    assert sorted(data[data[:, 0] == g, 1].astype(int)) == list(range(GAP[0]))
    assert sorted(data[data[:, 0] == new, 1].astype(int)) == list(range(GAP[-1] + 1, T))
    assert set(data[data[:, 0] == new, 5]) == {g} and set(data[data[:, 6] == g, 0]) == {g, new}
    assert gap_graph == {**tl.napari_graph(), new: [g]}
    clean = clean_labels(lab)
    for row in data:
        tid, t, oid = int(row[0]), int(row[1]), int(row[6])
        assert row[5] == (g if tid == new else tl.lineage[tid])
        assert oid == (g if tid == new else tid)
        assert row[4] == (clean[t] == oid).sum()


# ---------------------------------------------------------------------------- sessions
class FakeSession:
    """Duck-typed stand-in for VideoSession (no model needed)."""

    def __init__(self, tl: TimeLapse):
        self._lab = tl.labels.astype(np.uint16)
        self.num_frames, self.height, self.width = tl.labels.shape
        self.object_ids = sorted(set(np.unique(self._lab).tolist()) - {0}) + [50]  # 50 never found
        rgb = lambda i: np.repeat(tl.frames[i][..., None] / 255.0, 3, -1).astype(np.float32)  # noqa: E731
        self.source = SimpleNamespace(read=rgb)  # display-ready float RGB, like the real source
        self.label_calls = 0

    def labels(self, frames=None, dtype=np.uint16):
        self.label_calls += 1
        idx = range(self.num_frames) if frames is None else list(frames)
        return self._lab[list(idx)].astype(dtype)


def test_session_conveniences(tmp_path):
    tl = timelapse()
    s = FakeSession(tl)
    np.testing.assert_array_equal(tifffile.imread(export_label_stack_from_session(s, tmp_path / "l.tif")),
                                  clean_labels(s._lab))
    masks = export_object_masks_from_session(s, tmp_path / "masks")
    assert (masks / object_mask_name(50, 0, T)).exists()
    s.label_calls = 0
    v = export_overlay_video_from_session(s, tmp_path / "v.mp4", fps=4)
    assert s.label_calls == T  # one frame at a time
    assert len(decode(v)[0]) == T
    exp = export_ctc_from_session(s, tmp_path / "01_RES", tl.lineage)
    assert validate(exp.folder) == 1
    csv = export_tracks_csv_from_session(s, tmp_path / "t.csv", tl.lineage)
    rows = np.loadtxt(csv, delimiter=",", skiprows=1)
    assert rows.shape[1] == len(TRACKS_CSV_COLUMNS)
    geff_path = export_geff_from_session(s, tmp_path / "t.geff", tl.lineage, labels_path=tmp_path / "l.tif")
    import geff

    graph, meta = geff.read(geff_path, backend="networkx")
    assert graph.number_of_nodes() == len(rows) and meta.related_objects[0].path == "../l.tif"
    assert sorted((d["track_id"], d["t"]) for _, d in graph.nodes(data=True)) == [
        (int(r[0]), int(r[1])) for r in rows]


def test_ctc_tracks_multiple_gaps_and_label_allocation():
    from sam2_plugins.exports import ctc_tracks

    tracks = ctc_tracks({1: [0, 1, 4, 5, 8], 2: [3], 7: []}, {2: 1})
    assert [(t.label, t.begin, t.end, t.parent, t.source_id) for t in tracks] == [
        (1, 0, 1, 0, 1), (2, 3, 3, 1, 2), (3, 4, 5, 1, 1), (4, 8, 8, 3, 1)]
    wrapped = ctc_tracks({65535: [0, 2], 1: [0]})  # no room above the largest id: reuse a free one
    assert [(t.label, t.parent) for t in wrapped] == [(1, 0), (2, 65535), (65535, 0)]
    with pytest.raises(ValueError, match="16-bit"):
        ctc_tracks({70000: [0]})
