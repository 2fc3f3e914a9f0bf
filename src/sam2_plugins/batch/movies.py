"""Which movies a batch tracks, and what marks the objects in each: from folders, globs, movie files or a
manifest (CSV or JSON). Everything is checked here, on the machine that submits, before any work starts:
a missing movie, prompts file or label image, a manifest row without a movie, or two movies that would
write into the same result folder."""

from __future__ import annotations

import csv
import glob
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..sources.base import IMAGE_SUFFIXES, TIFF_SUFFIXES

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
MOVIE_SUFFIXES = TIFF_SUFFIXES + VIDEO_SUFFIXES + (".npy",)
MANIFEST_SUFFIXES = (".csv", ".json")
SIDECAR_PROMPTS = ".prompts.json"  # movie.tif + movie.prompts.json beside it

MANIFEST_HELP = """\
A manifest lists movies and what marks their objects, one per row (paths relative to the manifest):
  CSV:  movie,prompts,name,seed_frame        JSON: {"movies": [
        a.tif,a.prompts.json,,                         {"movie": "a.tif", "prompts": "a.prompts.json"},
        b.mp4,b_labels.tif,,0                          {"movie": "b.mp4", "prompts": "b_labels.tif"},
        day2/c.tif,auto,c-day2,3                       {"movie": "day2/c.tif", "prompts": "auto",
                                                        "name": "c-day2", "seed_frame": 3}]}
- "movie": a video file, TIFF stack, .npy array or folder of images
- "prompts": a prompts JSON (see 'sam2-plugins track --help'), a label image (TIFF/PNG, 0 = background)
  of the seed frame, or "auto" (automatic masks); empty = the --seed default
- "name" (optional): the result folder's name (default: the movie's file name without its suffix)
- "seed_frame" (optional): the frame a label image or "auto" describes (default 0)
A folder or glob instead of a manifest: every movie in it; a movie's prompts are NAME.prompts.json beside
it when that file exists, else the --seed default."""


@dataclass(frozen=True)
class Movie:
    """One movie of a batch: where it is, the name of its result folder, and how its objects are
    marked: ``seed`` is "prompts" (``prompts`` a prompts JSON), "labels" (``prompts`` a label image)
    or "auto" (automatic masks on ``seed_frame``)."""

    name: str
    path: str
    seed: str
    prompts: str | None = None
    seed_frame: int = 0


def find_movies(inputs: "str | Path | Iterable[str | Path]", *, default_seed: str = "auto") -> list[Movie]:
    """The movies named by ``inputs``: folders, glob patterns, movie files and manifests, in order.
    ``default_seed`` ("auto" or a label image path) marks the objects of movies without prompts."""
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    movies: list[Movie] = []
    for item in inputs:
        text = str(item)
        path = Path(text)
        if path.suffix.lower() in MANIFEST_SUFFIXES and path.is_file():
            movies += read_manifest(path, default_seed=default_seed)
        elif path.is_dir() and not _is_image_folder(path):
            found = _movies_in_folder(path)
            if not found:
                raise ValueError(f"folder {path} holds no movies ({', '.join(MOVIE_SUFFIXES)}, or folders of images)")
            movies += [_movie_with_sidecar(p, default_seed) for p in found]
        elif any(c in text for c in "*?["):
            found = [Path(p) for p in sorted(glob.glob(text, recursive=True)) if _is_movie(Path(p))]
            if not found:
                raise ValueError(f"no movies match {text}")
            movies += [_movie_with_sidecar(p, default_seed) for p in found]
        elif path.exists():
            if not _is_movie(path):
                raise ValueError(f"{path} is not a movie ({', '.join(MOVIE_SUFFIXES)}, or a folder of images) "
                                 f"nor a manifest ({', '.join(MANIFEST_SUFFIXES)})")
            movies.append(_movie_with_sidecar(path, default_seed))
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
    if not movies:
        raise ValueError("no movies to track")
    _check_names(movies)
    return movies


def read_manifest(path: Path, *, default_seed: str = "auto") -> list[Movie]:
    """The rows of a CSV or JSON manifest (see :data:`MANIFEST_HELP`), each checked."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON: {err}") from None
        rows = data.get("movies") if isinstance(data, dict) else data
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ValueError(f"{path}: expected a list of {{\"movie\": ..., \"prompts\": ...}} under \"movies\"")
        where = [f"{path}: movies[{i}]" for i in range(len(rows))]
    else:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or "movie" not in [n.strip() for n in reader.fieldnames]:
                raise ValueError(f"{path}: the first line must name the columns, with at least \"movie\"")
            rows = [{k.strip(): (v or "").strip() for k, v in r.items() if k} for r in reader]
        where = [f"{path}: line {i + 2}" for i in range(len(rows))]
    if not rows:
        raise ValueError(f"manifest {path} lists no movies")
    return [_manifest_row(path.parent, row, at, default_seed) for row, at in zip(rows, where)]


def _manifest_row(base: Path, row: dict, where: str, default_seed: str) -> Movie:
    unknown = set(row) - {"movie", "prompts", "name", "seed_frame"}
    if unknown:
        raise ValueError(f"{where} has unknown columns: {', '.join(sorted(unknown))}")
    if not row.get("movie"):
        raise ValueError(f"{where} names no movie")
    movie = _resolve(base, str(row["movie"]))
    if not movie.exists():
        raise FileNotFoundError(f"{where}: movie not found: {movie}")
    try:
        seed_frame = int(row.get("seed_frame") or 0)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: seed_frame must be a frame index, not {row.get('seed_frame')!r}") from None
    if seed_frame < 0:
        raise ValueError(f"{where}: seed_frame must be >= 0")
    prompts = str(row.get("prompts") or "") or default_seed
    name = str(row.get("name") or "") or _default_name(movie)
    try:
        return _seeded(name, movie, prompts if prompts == "auto" else _resolve(base, prompts), seed_frame)
    except (ValueError, FileNotFoundError) as err:
        raise type(err)(f"{where}: {err}") from None


def _seeded(name: str, movie: Path, prompts: "str | Path", seed_frame: int = 0) -> Movie:
    """A movie with its prompts checked: "auto", a prompts JSON that parses, or a label image. Paths are made
    absolute: workers may not share this process's working folder."""
    movie = movie.absolute()
    if prompts == "auto":
        return Movie(name, str(movie), "auto", None, seed_frame)
    prompts = Path(prompts).absolute()
    if not prompts.is_file():
        raise FileNotFoundError(f"prompts file or label image not found: {prompts}")
    if prompts.suffix.lower() == ".json":
        from ..prompts_file import read_prompts

        read_prompts(prompts)  # a bad prompts file is an error now, not a failure on a worker later
        return Movie(name, str(movie), "prompts", str(prompts), seed_frame)
    if prompts.suffix.lower() in IMAGE_SUFFIXES:
        return Movie(name, str(movie), "labels", str(prompts), seed_frame)
    raise ValueError(f"{prompts} is neither a prompts file (.json) nor a label image ({', '.join(IMAGE_SUFFIXES)})")


def _movie_with_sidecar(movie: Path, default_seed: str) -> Movie:
    sidecar = movie.parent / (_default_name(movie) + SIDECAR_PROMPTS)
    return _seeded(_default_name(movie), movie, sidecar if sidecar.is_file() else default_seed)


def _resolve(base: Path, text: str) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path


def _default_name(movie: Path) -> str:
    return movie.name if movie.is_dir() else movie.name[: len(movie.name) - len(movie.suffix)]


def _is_image_folder(path: Path) -> bool:
    """A folder of frames (one movie), not a folder of movies: it holds images and no movie files."""
    files = [p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")]
    suffixes = {p.suffix.lower() for p in files}
    return bool(suffixes & set(IMAGE_SUFFIXES) - set(TIFF_SUFFIXES)) and not suffixes & set(MOVIE_SUFFIXES)


def _is_movie(path: Path) -> bool:
    if path.is_dir():
        return _is_image_folder(path)
    return path.is_file() and path.suffix.lower() in MOVIE_SUFFIXES and not path.name.startswith(".")


def _movies_in_folder(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and _is_movie(p))


def _check_names(movies: list[Movie]) -> None:
    seen: dict[str, str] = {}
    for m in movies:
        if not m.name or "/" in m.name or "\\" in m.name or m.name.startswith(".") or m.name in ("..",):
            raise ValueError(f"{m.path}: {m.name!r} cannot name a result folder")
        if m.name in seen:
            raise ValueError(f"two movies would write into the same result folder {m.name!r}: {seen[m.name]} "
                             f"and {m.path}; give them names in a manifest")
        seen[m.name] = m.path
