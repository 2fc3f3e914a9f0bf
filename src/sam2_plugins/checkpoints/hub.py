"""Model names: the local cache, the bundled weights, and downloads from the Hugging Face hub.

Names (``sam2.1-hiera-tiny`` ...) resolve to ``<cache>/<file>``; the cache directory is
``$SAM2_PLUGINS_CACHE`` or ``~/.cache/sam2_plugins``. A name that is not cached is
downloaded from the Hugging Face hub repository ``facebook/<name>``.

Before downloading, one metadata request (no retries, ``HF_HUB_ETAG_TIMEOUT`` seconds at most)
checks that the hub can be reached at all. Where it cannot (no network, no name resolution,
a refused or timed-out connection, offline mode) the error says at once which file to put where:
``hf_hub_download`` retries such failures with back-off for about 25 s when no local copy exists,
which helps a flaky server but not a machine without a network. Any other answer goes on to the
download, with its own retries.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from ..config import OFFICIAL_MODEL_NAMES
from .files import CheckpointError

CACHE_ENV = "SAM2_PLUGINS_CACHE"

# failures that mean the hub cannot be reached from here, by class name: huggingface_hub raises
# its HTTP client's exceptions (httpx's, or requests' in older releases) without wrapping them
_UNREACHABLE = frozenset({"ConnectError", "ConnectTimeout", "ConnectionError", "ProxyError", "gaierror",
                          "OfflineModeIsEnabled"})


def cache_dir() -> Path:
    """Directory where named checkpoints are looked for and downloaded to."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "sam2_plugins")


def hub_location(name: str) -> tuple[str, str]:
    """(hub repository, file name) of an official model name."""
    return f"facebook/{name}", OFFICIAL_MODEL_NAMES[name] + ".pt"


def bundled_weights(name: str) -> tuple[Path, Path] | None:
    """(weights, config) of a model shipped inside the package, if ``name`` is one."""
    folder = resources.files("sam2_plugins").joinpath("weights")
    weights, config = folder.joinpath(f"{name}.safetensors"), folder.joinpath(f"{name}.config.json")
    if weights.is_file() and config.is_file():
        return Path(str(weights)), Path(str(config))
    return None


def bundled_names() -> list[str]:
    folder = resources.files("sam2_plugins").joinpath("weights")
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(".safetensors")] for p in folder.iterdir() if p.name.endswith(".safetensors"))


def _first_line(err: BaseException) -> str:
    return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'no details'}"


def unreachable_hub(repo: str, filename: str) -> BaseException | None:
    """The error of one metadata request for ``repo/filename`` when the hub cannot be reached at
    all; None when it answered (even with an error the download then reports or retries)."""
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url

    try:
        get_hf_file_metadata(hf_hub_url(repo, filename), timeout=constants.HF_HUB_ETAG_TIMEOUT)
    except Exception as err:  # noqa: BLE001 - sorted below by what it says about the connection
        if any(cls.__name__ in _UNREACHABLE for cls in type(err).__mro__):
            return err
    return None


def download_progress_bar(progress: "Callable[[int, int], Any]") -> type:
    """A progress-bar class for ``hf_hub_download(tqdm_class=...)`` that reports each update as
    ``progress(bytes_done, bytes_total)``, also where the hub's own bars are switched off."""
    from huggingface_hub.utils import tqdm as hub_tqdm

    class Reporting(hub_tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.bytes_done = int(kwargs.get("initial") or 0)

        def update(self, n: "float | None" = 1) -> "bool | None":
            self.bytes_done += int(n or 0)
            progress(self.bytes_done, int(self.total or 0))
            return super().update(n)

    return Reporting


def resolve_checkpoint(name: str, *, download: bool = True, folder: "str | os.PathLike | None" = None,
                       progress: "Callable[[int, int], Any] | None" = None) -> Path:
    """Local path of an official model's checkpoint, downloading it when needed and possible.

    ``folder`` looks for (and downloads into) that folder instead of the cache (an application's own
    model folder, e.g. ComfyUI's ``models/sam2``). ``progress(bytes_done, bytes_total)`` hears how a
    download goes (a GUI's progress bar).
    """
    repo, filename = hub_location(name)
    target = (Path(folder) if folder is not None else cache_dir()) / filename
    if target.is_file():
        return target
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    how_to = (
        f"put the file {filename} from the Hugging Face hub repository {repo} at {target}"
        + ("" if folder is not None else f" (or set {CACHE_ENV} to the folder that holds it)")
    )
    if not download or offline:
        raise CheckpointError(f"model {name!r} is not cached and downloads are off: {how_to}")
    try:
        from huggingface_hub import hf_hub_download

        unreachable = unreachable_hub(repo, filename)
        if unreachable is not None:
            raise CheckpointError(f"model {name!r} is not cached and the Hugging Face hub cannot be reached "
                                  f"({_first_line(unreachable)}); {how_to}")
        target.parent.mkdir(parents=True, exist_ok=True)
        bar = {} if progress is None else {"tqdm_class": download_progress_bar(progress)}
        path = hf_hub_download(repo_id=repo, filename=filename, local_dir=str(target.parent), **bar)
    except CheckpointError:
        raise
    except Exception as err:  # noqa: BLE001 - any network/hub failure means the same to the user
        raise CheckpointError(
            f"model {name!r} is not cached and could not be downloaded ({_first_line(err)}); {how_to}"
        ) from None
    return Path(path)
