"""Atomic writes: a single file or a whole folder appears complete or not at all.

Files are written under a hidden temporary name in the destination folder
(``.<name>.<host>-<pid>-<random>.tmp``), flushed and fsynced, then moved over the
final name with :func:`os.replace`.  Folders are built in a hidden temporary
sibling folder, every file (at any depth) fsynced, then swapped with the previous
folder (an atomic exchange on Linux via ``renameat2(RENAME_EXCHANGE)``, else two
renames).
An export that is interrupted -- exception, cancel, Ctrl-C or even SIGKILL --
therefore leaves the previous output untouched.  Temporaries orphaned by a killed
process on this host are removed by the next export to the same destination.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import secrets
import shutil
import socket
import sys
from pathlib import Path
from typing import Callable, Iterator

from ..cancel import is_cancelled

__all__ = ["atomic_file", "atomic_folder", "is_cancelled", "ExportCancelled"]


class ExportCancelled(Exception):
    """Raised inside a writer when its ``cancel`` flag was set (caught by the public functions)."""


def _host_tag() -> str:
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:16] or "host"


def _temp_name(final: Path) -> str:
    return f".{final.name}.{_host_tag()}-{os.getpid()}-{secrets.token_hex(4)}.tmp"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists but belongs to someone else, or we cannot tell: keep it
    return True


def _remove_stale(final: Path) -> None:
    """Delete temporaries for `final` left by dead processes of this host."""
    pattern = re.compile(re.escape(f".{final.name}.{_host_tag()}-") + r"(\d+)-[0-9a-f]+\.(?:tmp|old)$")
    try:
        names = os.listdir(final.parent)
    except OSError:
        return
    for name in names:
        m = pattern.fullmatch(name)
        if m is None or _pid_alive(int(m.group(1))):
            continue
        p = final.parent / name
        with contextlib.suppress(OSError):
            if name.endswith(".old") and not final.exists():
                os.rename(p, final)  # died between the two renames of a folder swap: restore
            elif p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()


def _fsync_path(path: Path, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        if directory:
            return  # e.g. Windows cannot open directories; the rename is still atomic
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


def _prepare(final: Path) -> Path:
    final = Path(os.fspath(final)).expanduser()
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(final)
    return final


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success fsync it and move it over `path`.

    The writer must write to (and close) the yielded path.  On any exception,
    including :class:`ExportCancelled` and ``KeyboardInterrupt``, the temporary
    file is deleted and `path` keeps its previous content.
    """
    final = _prepare(path)
    if final.is_dir():
        raise IsADirectoryError(f"{final} is a folder; give a file name")
    tmp = final.parent / _temp_name(final)
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"the writer produced no file for {final}")
        _fsync_path(tmp)
        os.replace(tmp, final)
        _fsync_path(final.parent, directory=True)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths (Linux renameat2); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    at_fdcwd, rename_exchange = -100, 2
    return fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike, owned: Callable[[str], bool]) -> Iterator[Path]:
    """Yield an empty temporary folder; on success it replaces the folder `path` as a whole.

    `owned(name)` tells whether an entry of an existing `path` is something this
    exporter writes; if the existing folder holds anything else, FileExistsError is
    raised before writing, so an export never deletes unrelated files.  On any
    exception the temporary folder is removed and `path` is left as it was.
    """
    final = _prepare(path)
    if final.exists():
        if not final.is_dir():
            raise NotADirectoryError(f"{final} exists and is not a folder")
        foreign = sorted(n for n in os.listdir(final) if not owned(n))
        if foreign:
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise FileExistsError(
                f"{final} holds files this export does not write ({shown}); "
                "choose an empty or new folder (the whole folder is replaced)"
            )
    tmp = final.parent / _temp_name(final)
    tmp.mkdir()
    try:
        yield tmp
        for root, _dirs, files in os.walk(tmp, topdown=False):  # nested folders too (e.g. zarr)
            for name in files:
                _fsync_path(Path(root) / name)
            _fsync_path(Path(root), directory=True)
        if not final.exists():
            os.rename(tmp, final)
        elif _exchange(tmp, final):
            shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the previous output
        else:
            old = final.parent / (_temp_name(final)[:-4] + ".old")
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        _fsync_path(final.parent, directory=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
