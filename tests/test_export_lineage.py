"""One rule for specks, gaps and lineage in every export (sam2_plugins.exports.lineage).

Each test writes the label TIFF, PNG masks, CTC folder, tracks.csv, napari tracks and
GEFF graph of one label stack and reads every file back with its own library
(tifffile, Pillow, py-ctcmetrics, numpy, geff): they must agree on the pixels, on
which object is present on which frame, and on track ids and parents.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import tifffile
from PIL import Image
from scipy import ndimage as ndi

from sam2_plugins.exports import (
    DEFAULT_MIN_AREA,
    clean_frame,
    clean_labels,
    ctc_mask_name,
    object_mask_name,
    track_segments,
    tracks_table,
    write_ctc,
    write_geff,
    write_label_stack,
    write_object_masks,
    write_tracks_csv,
)
from sam2_plugins.synthetic import make_timelapse

geff = pytest.importorskip("geff")


# ---------------------------------------------------------------------------- helpers
def export_all(root: Path, lab: np.ndarray, parents, masks: bool = True, **kw) -> SimpleNamespace:
    """Every array-based export of one label stack, as the CLI writes them (PNG masks optional)."""
    root.mkdir(parents=True, exist_ok=True)
    labels_tif = write_label_stack(root / "labels.tif", lab, **kw)
    masks = write_object_masks(root / "masks", lab, **kw) if masks else None
    ctc = write_ctc(root / "ctc", lab, parents, **kw)
    csv = write_tracks_csv(root / "tracks.csv", lab, parents, **kw)
    napari = tracks_table(lab, parents, **kw)
    g = write_geff(root / "tracks.geff", lab, parents, labels_path=labels_tif, **kw)
    return SimpleNamespace(labels_tif=labels_tif, masks=masks, ctc=ctc.folder, csv=csv, napari=napari, geff=g)


def res_track(folder: Path) -> dict[int, tuple[int, int, int]]:
    rows = np.loadtxt(folder / "res_track.txt", dtype=np.int64, ndmin=2)
    return {int(r[0]): (int(r[1]), int(r[2]), int(r[3])) for r in rows}


def read_csv(path: Path) -> dict[str, np.ndarray]:
    header = path.read_text().splitlines()[0].split(",")
    assert header == ["track_id", "t", "y", "x", "area", "parent_id", "object_id"]
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2).reshape(-1, len(header))
    return {h: (data[:, i] if h in "yx" else data[:, i].astype(np.int64)) for i, h in enumerate(header)}


def validate(res: Path) -> int:
    from ctc_metrics.scripts.validate import validate_sequence

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any complaint of the validator fails the test
        return validate_sequence(str(res), threads=1)["Valid"]


def expected_edges(table: dict[int, tuple[int, int, int]]) -> set[tuple[tuple[int, int], tuple[int, int]]]:
    """GEFF edges as ((track, t), (track, t)) pairs, built from res_track.txt alone."""
    edges = set()
    for k, (b, e, p) in table.items():
        edges |= {((k, t), (k, t + 1)) for t in range(b, e)}
        if p:
            edges.add(((p, table[p][1]), (k, b)))
    return edges


def check_agreement(out: SimpleNamespace, num_frames: int) -> dict[int, tuple[int, int, int]]:
    """All exports of `out` say the same thing; returns the CTC table."""
    assert validate(out.ctc) == 1
    table = res_track(out.ctc)
    lab = tifffile.imread(out.labels_tif)
    if lab.ndim == 2:
        lab = lab[None]
    ctc = np.stack([tifffile.imread(out.ctc / ctc_mask_name(t, num_frames)) for t in range(num_frames)])
    # tracks.csv: one row per CTC track and frame, same parents, object_id = labels.tif value
    csv = read_csv(out.csv)
    rows = sorted(zip(csv["track_id"].tolist(), csv["t"].tolist()))
    assert rows == sorted((k, t) for k, (b, e, _) in table.items() for t in range(b, e + 1))
    for tid, t, area, parent, oid, y, x in zip(csv["track_id"], csv["t"], csv["area"], csv["parent_id"],
                                               csv["object_id"], csv["y"], csv["x"]):
        assert parent == table[tid][2]
        in_ctc, in_lab = ctc[t] == tid, lab[t] == oid
        np.testing.assert_array_equal(in_ctc, in_lab)  # the same pixels under both ids
        assert area == in_lab.sum()
        cy, cx = ndi.center_of_mass(in_lab)
        assert abs(y - cy) < 1e-3 and abs(x - cx) < 1e-3
    # every labels.tif object on every frame is in tracks.csv (nothing present is left out)
    present = {(t, int(i)) for t in range(num_frames) for i in np.unique(lab[t]) if i}
    assert present == set(zip(csv["t"].tolist(), csv["object_id"].tolist()))
    # PNG masks: the same pixels as labels.tif
    for name in os.listdir(out.masks) if out.masks else ():
        oid, t = int(name[3:name.index("_")]), int(name[name.index("_t") + 2:-4])
        with Image.open(out.masks / name) as im:
            np.testing.assert_array_equal(np.asarray(im) == 255, lab[t] == oid)
    # napari: the csv's first four columns and the CTC parents as graph
    tracks, graph = out.napari
    np.testing.assert_allclose(tracks[:, :2], np.stack([csv["track_id"], csv["t"]], 1))
    np.testing.assert_allclose(tracks[:, 2:], np.stack([csv["y"], csv["x"]], 1), atol=1e-3)
    assert graph == {k: [p] for k, (_, _, p) in table.items() if p}
    # GEFF: one node per track and frame, edges within tracks + parent's last -> child's first
    from geff.validate.data import ValidationConfig
    from geff.validate.segmentation import has_seg_ids_at_time_points

    g, meta = geff.read(out.geff, backend="networkx",
                        data_validation=ValidationConfig(graph=True, lineage=True))
    nodes = dict(g.nodes(data=True))
    key = {n: (d["track_id"], d["t"]) for n, d in nodes.items()}
    assert sorted(key.values()) == rows
    assert {(key[u], key[v]) for u, v in g.edges} == expected_edges(table)
    assert g.number_of_edges() == len(expected_edges(table))
    by_key = {(int(a), int(b)): i for i, (a, b) in enumerate(zip(csv["track_id"], csv["t"]))}
    for n, d in nodes.items():
        i = by_key[key[n]]
        assert d["seg_id"] == csv["object_id"][i] and d["area"] == csv["area"][i]
        assert abs(d["y"] - csv["y"][i]) < 1e-3 and abs(d["x"] - csv["x"][i]) < 1e-3
        np.testing.assert_array_equal(lab[d["t"]] == d["seg_id"], ctc[d["t"]] == d["track_id"])
    ok, errors = has_seg_ids_at_time_points(lab, [d["t"] for d in nodes.values()],
                                            [d["seg_id"] for d in nodes.values()], meta)
    assert ok, errors
    assert [(a.name, a.type) for a in meta.axes] == [("t", "time"), ("y", "space"), ("x", "space")]
    (rel,) = meta.related_objects
    assert (rel.type, rel.node_prop) == ("labels", "seg_id")
    assert (Path(out.geff) / rel.path).resolve() == Path(out.labels_tif).resolve()
    return table


def pieces_at_least(mask: np.ndarray, min_area: int) -> np.ndarray:
    """The 8-connected pieces of `mask` with >= min_area pixels (scipy, independent of the code)."""
    lab, n = ndi.label(mask, structure=np.ones((3, 3), bool))
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    keep = sizes >= min_area
    keep[0] = False
    return keep[lab]


# ---------------------------------------------------------------------------- synthetic time-lapse
SEED, TL_FRAMES = 5, 60
GAP_FRAMES = range(30, 34)


def test_exports_agree_on_synthetic_timelapse(tmp_path):
    """True labels and lineage of a synthetic time-lapse (2 divisions, an entering cell, a
    cell leaving as a 7-px sliver), plus one cell lost for 4 frames, as the tracking result."""
    tl = make_timelapse(SEED, num_frames=TL_FRAMES, height=192, width=192, num_cells=8, dtype=np.uint16)
    kids = tl.children()
    assert len(kids) == 2 and any(tr.first > 0 and tr.parent == 0 for tr in tl.tracks.values())
    lab = tl.labels.astype(np.uint16)
    gap = next(k for k, tr in sorted(tl.tracks.items())
               if tr.first == 0 and tr.last == TL_FRAMES - 1 and k not in kids and tr.parent == 0)
    for t in GAP_FRAMES:
        lab[t][lab[t] == gap] = 0
    out = export_all(tmp_path, lab, tl.lineage)
    table = check_agreement(out, TL_FRAMES)

    # against the truth: presence = frames with a piece of >= min_area pixels (computed with scipy)
    m = DEFAULT_MIN_AREA
    clean = np.zeros_like(lab)
    for t in range(TL_FRAMES):
        for oid in np.unique(lab[t])[1:]:
            clean[t][pieces_at_least(lab[t] == oid, m)] = oid
    np.testing.assert_array_equal(tifffile.imread(out.labels_tif), clean)
    assert not np.array_equal(clean, lab)  # the specks of this time-lapse were really dropped
    new = int(lab.max()) + 1
    assert table[gap] == (0, GAP_FRAMES[0] - 1, 0)
    assert table[new] == (GAP_FRAMES[-1] + 1, TL_FRAMES - 1, gap)  # the gap bridge
    for mother, daughters in kids.items():
        for d in daughters:
            assert table[d][2] == mother and table[mother][1] < table[d][0]
    for k in tl.tracks:
        if k == gap:
            continue
        frames = [t for t in range(TL_FRAMES) if pieces_at_least(lab[t] == k, m).any()]
        assert table[k][:2] == (frames[0], frames[-1])
    # this seed: cell 5 leaves as a 7-px sliver (frame 9), entering cell 9 starts as 9 px (frame 15)
    assert (tl.tracks[5].last, table[5][1]) == (9, 8)
    assert (tl.tracks[9].first, table[9][0]) == (15, 16)

    # min_area=0: the exports still agree with each other, now on the raw pixels
    raw = export_all(tmp_path / "raw", lab, tl.lineage, masks=False, min_area=0)
    raw_table = check_agreement(raw, TL_FRAMES)
    np.testing.assert_array_equal(tifffile.imread(raw.labels_tif), lab)
    assert (raw_table[5][1], raw_table[9][0]) == (9, 15)


# ---------------------------------------------------------------------------- the speck case
def speck_stack() -> np.ndarray:
    """Cell 5 (8x8) on frames 0-9 and 13-19, a 3-px speck of it on frame 11 (otherwise a gap from
    10 to 12), and a 3-px stray piece beside it on frame 4; cell 2 present throughout."""
    lab = np.zeros((20, 40, 40), np.uint16)
    lab[:, 25:35, 25:35] = 2
    for t in [*range(10), *range(13, 20)]:
        lab[t, 5 + t // 4:13 + t // 4, 5:13] = 5
    lab[11, 20, 8:11] = 5  # the speck: the only pixels of cell 5 on frame 11
    lab[4, 2, 18:21] = 5  # a stray 3-px piece of cell 5 beside its body
    return lab


def test_speck_is_a_gap_in_every_export(tmp_path):
    lab = speck_stack()
    out = export_all(tmp_path, lab, {})
    table = check_agreement(out, 20)
    # the rule's answer: the speck is dropped, so frame 11 is part of the gap: cell 5 ends on
    # frame 9 and comes back on frame 13 as a new track (label 6) whose parent is 5
    assert table == {2: (0, 19, 0), 5: (0, 9, 0), 6: (13, 19, 5)}
    saved = tifffile.imread(out.labels_tif)
    assert not (saved[11] == 5).any() and (saved[4] == 5).sum() == 64  # speck and stray piece gone
    with Image.open(out.masks / object_mask_name(5, 11, 20)) as im:
        assert not np.asarray(im).any()
    csv = read_csv(out.csv)
    assert 11 not in csv["t"][csv["object_id"] == 5]
    assert set(csv["track_id"][csv["object_id"] == 5]) == {5, 6}
    g, _ = geff.read(out.geff, backend="networkx")
    assert not [n for n, d in g.nodes(data=True) if d["seg_id"] == 5 and d["t"] == 11]
    assert tracks_table(lab)[1] == {6: [5]}

    # min_area=0 keeps the speck: then it is a one-frame track everywhere, the same in all exports
    raw = export_all(tmp_path / "raw", lab, {}, min_area=0)
    assert check_agreement(raw, 20) == {2: (0, 19, 0), 5: (0, 9, 0), 6: (11, 11, 5), 7: (13, 19, 6)}
    # a threshold between the two: min_area=4 drops the 3-px speck too
    assert track_segments(lab, min_area=4).table().tolist() == [[2, 0, 19, 0], [5, 0, 9, 0], [6, 13, 19, 5]]


def test_only_speck_on_the_last_frame_ends_the_track(tmp_path):
    """The case measured on main: cell 5 is a 3-px speck on frame 19 (its last frame)."""
    lab = speck_stack()[:13].copy()
    lab[12] = lab[9]
    lab = np.concatenate([lab, np.repeat(lab[12:13], 7, 0)])  # cell 5 present 0-9, 12-19 ...
    lab[19][lab[19] == 5] = 0
    lab[19, 30, 2:5] = 5  # ... but only a 3-px speck on frame 19
    out = export_all(tmp_path, lab, {})
    assert check_agreement(out, 20) == {2: (0, 19, 0), 5: (0, 9, 0), 6: (12, 18, 5)}


# ---------------------------------------------------------------------------- divisions
def division_stack() -> tuple[np.ndarray, dict[int, int]]:
    """Mother 1 on frames 0-4, daughters 2 and 3 from frame 5; mother 7 on 0-2, lost on frame 3,
    back on 4-5, daughters 8 and 9 from frame 6; cell 4 has no lineage."""
    lab = np.zeros((10, 48, 64), np.uint16)
    lab[:5, 4:14, 4:14] = 1
    lab[5:, 2:9, 4:11] = 2
    lab[5:, 10:17, 4:11] = 3
    for t in (0, 1, 2, 4, 5):
        lab[t, 25:35, 25:35] = 7
    lab[6:, 22:29, 25:32] = 8
    lab[6:, 31:38, 25:32] = 9
    lab[:, 40:46, 50:60] = 4
    return lab, {2: 1, 3: 1, 8: 7, 9: 7, 4: 0}


def test_scripted_division_parent_in_every_export(tmp_path):
    lab, parents = division_stack()
    out = export_all(tmp_path, lab, parents)
    table = check_agreement(out, 10)
    # 7's run after its gap is track 10; the daughters' parent is that last run, not 7
    assert table == {1: (0, 4, 0), 2: (5, 9, 1), 3: (5, 9, 1), 4: (0, 9, 0),
                     7: (0, 2, 0), 8: (6, 9, 10), 9: (6, 9, 10), 10: (4, 5, 7)}
    csv = read_csv(out.csv)
    assert set(csv["object_id"][csv["track_id"] == 10]) == {7}
    assert set(csv["parent_id"][np.isin(csv["track_id"], [2, 3])]) == {1}
    assert out.napari[1] == {2: [1], 3: [1], 8: [10], 9: [10], 10: [7]}
    g, meta = geff.read(out.geff, backend="networkx")
    node = {(d["track_id"], d["t"]): n for n, d in g.nodes(data=True)}
    for mother_last, daughter_first in [((1, 4), (2, 5)), ((1, 4), (3, 5)), ((7, 2), (10, 4)),
                                        ((10, 5), (8, 6)), ((10, 5), (9, 6))]:
        assert g.has_edge(node[mother_last], node[daughter_first])
    assert sorted(g.successors(node[(1, 4)])) == sorted([node[(2, 5)], node[(3, 5)]])
    lineage = {d["track_id"]: d["lineage_id"] for _, d in g.nodes(data=True)}
    assert lineage == {1: 1, 2: 1, 3: 1, 4: 4, 7: 7, 10: 7, 8: 7, 9: 7}
    assert meta.track_node_props == {"lineage": "lineage_id"}


def test_daughter_before_mother_ends_has_no_parent_everywhere(tmp_path):
    lab, parents = division_stack()
    lab[4, 2:9, 30:37] = 2  # daughter 2 appears while mother 1 is still there
    with pytest.warns(UserWarning, match="parent 1"):
        out = export_all(tmp_path, lab, parents)
    table = check_agreement(out, 10)
    assert table[2] == (4, 9, 0) and table[3] == (5, 9, 1)


# ---------------------------------------------------------------------------- the rule itself
def test_clean_rule_pieces_idempotent_and_opt_out():
    f = np.zeros((30, 30), np.uint16)
    f[2:7, 2:7] = 1  # 25 px body
    f[10, 10:13] = 1  # 3-px stray piece: dropped
    f[20:24, 20:23] = 1  # 12-px second piece: kept (>= min_area)
    f[0, 20], f[1, 21], f[2, 22], f[3, 23], f[4, 24] = 3, 3, 3, 3, 3  # diagonal chain: 5 px, one piece
    f[10:13, 20:23] = 4  # 9 px: the whole object is a speck -> absent
    f[26, 0:4], f[28, 0:4], f[26:29, 8] = 5, 5, 5  # only small pieces (4 + 4 + 3 = 11 px): absent
    f[15:18, 0:4] = 6  # 12 px: kept
    c = clean_frame(f)
    assert sorted(np.unique(c).tolist()) == [0, 1, 6]
    assert (c == 1).sum() == 37 and c[10, 10:13].max() == 0
    np.testing.assert_array_equal(c[c > 0], f[c > 0])  # nothing relabelled, only erased
    assert clean_frame(c) is c  # idempotent: nothing left to drop (and no copy)
    assert clean_frame(f, min_area=0) is f and clean_frame(f, min_area=1) is f
    assert sorted(np.unique(clean_frame(f, min_area=4)).tolist()) == [0, 1, 3, 4, 5, 6]
    # two touching objects are separate pieces, even with the same neighbours
    t = np.zeros((6, 6), np.uint16)
    t[1:5, 1:5] = 7
    t[2, 2] = 8
    assert (clean_frame(t, min_area=2) == 8).sum() == 0 and (clean_frame(t, min_area=2) == 7).sum() == 15
    stack = np.stack([f, c, np.zeros_like(f)])
    cl = clean_labels(stack)
    np.testing.assert_array_equal(cl, np.stack([c, c, np.zeros_like(f)]))
    assert clean_labels(cl) is cl
    with pytest.raises(ValueError, match="min_area"):
        clean_frame(f, min_area=-1)


def test_segments_shared_object(tmp_path):
    lab, parents = division_stack()
    seg = track_segments(lab, parents)
    assert len(seg) == 38 and seg.parents[10] == 7 and seg.graph()[8] == [10]
    assert seg.labels_on(4) == {7: 10, 1: 1, 4: 4}
    out = write_ctc(tmp_path / "ctc", lab, parents)
    assert out.table().tolist() == seg.table().tolist()
    assert out.source_ids()[10] == 7


# ---------------------------------------------------------------------------- GEFF file handling
def test_geff_replace_refuse_foreign_and_empty(tmp_path):
    lab, parents = division_stack()
    p = tmp_path / "t.geff"
    write_geff(p, lab, parents)
    write_geff(p, lab[:3], {}, zarr_format=3)  # replaces the previous graph as a whole
    g, meta = geff.read(p, backend="networkx")
    assert g.number_of_nodes() == 3 * 3 and meta.related_objects is None
    assert sorted(os.listdir(p)) == ["edges", "nodes", "zarr.json"]
    assert os.listdir(tmp_path) == ["t.geff"]  # no temporaries left
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="notes.txt"):
        write_geff(mine, lab)
    assert os.listdir(mine) == ["notes.txt"]
    empty = write_geff(tmp_path / "empty.geff", np.zeros((4, 8, 8), np.uint16))
    g, meta = geff.read(empty, backend="networkx")
    assert g.number_of_nodes() == 0 and g.number_of_edges() == 0
    assert meta.extra["sam2_plugins"]["min_area"] == DEFAULT_MIN_AREA


def test_ids_beyond_16_bits_work_except_in_ctc(tmp_path):
    lab = np.zeros((4, 20, 20), np.uint32)
    lab[[0, 1, 3], 2:8, 2:8] = 70_000  # a gap on frame 2
    lab[:, 10:16, 10:16] = 3
    seg = track_segments(lab)
    assert seg.table().tolist() == [[3, 0, 3, 0], [70_000, 0, 1, 0], [70_001, 3, 3, 70_000]]
    csv = read_csv(write_tracks_csv(tmp_path / "t.csv", lab))
    assert set(zip(csv["track_id"].tolist(), csv["object_id"].tolist())) == {(3, 3), (70_000, 70_000),
                                                                            (70_001, 70_000)}
    g, _ = geff.read(write_geff(tmp_path / "t.geff", lab), backend="networkx")
    assert g.number_of_nodes() == 7 and g.number_of_edges() == 5
    with pytest.raises(ValueError, match="16-bit"):
        write_ctc(tmp_path / "ctc", lab)
    assert not (tmp_path / "ctc").exists()
    # 16-bit ids whose gap labels run out of 16-bit room: CTC refuses, the others count on past 65535
    from sam2_plugins.exports import ctc_tracks

    full = {i: [0] for i in range(1, 65535)} | {65535: [0, 2]}
    assert ctc_tracks(full, max_label=None)[-1].label == 65536
    with pytest.raises(ValueError, match="more than 65535"):
        ctc_tracks(full)
