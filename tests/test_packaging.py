"""Packaging as users meet it: the command line, the adapter packages, the ComfyUI custom-node folder, the wheel.

Everything runs in subprocesses started outside the repository, so the checkout on sys.path (pytest puts the
repository root there) cannot make a missing package look installed.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ADAPTERS = ("napari_plugin", "comfy_nodes", "gradio_app")
# Top-level modules of the adapters' host frameworks: none may be imported by the stubs or the node folder.
FRAMEWORKS = ("napari", "magicgui", "vispy", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6",
              "comfy", "comfy_api", "comfy_extras", "folder_paths", "gradio", "gradio_client")
PACKAGE_DATA = ("sam2_plugins/weights/micro-synthetic.safetensors", "sam2_plugins/configs/official_models.json",
                "sam2_plugins/data/sample_cells.tif")
# What a build copy of the checkout leaves out: version control, build outputs, caches (at the top level).
BUILD_JUNK = {".git", "build", "dist", ".venv", "venv", ".pytest_cache", ".mypy_cache", ".ruff_cache", "out"}


def _version(root: Path = ROOT) -> str:
    """``__version__`` as written in the package's __init__.py (what setuptools reads for the metadata)."""
    tree = ast.parse((root / "src" / "sam2_plugins" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("no __version__ = '...' in src/sam2_plugins/__init__.py")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    kept = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).resolve() != ROOT]
    env["PYTHONPATH"] = os.pathsep.join(kept)
    return env


def _run(args: list, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env=_env())
    if result.returncode != 0:
        shown = " ".join(str(a) if len(str(a)) < 80 else str(a)[:77] + "..." for a in args)
        pytest.fail(f"{shown} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def _python(code: str, cwd: Path, python: str | Path = sys.executable) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON object as its last line."""
    return json.loads(_run([python, "-c", textwrap.dedent(code)], cwd).stdout.strip().splitlines()[-1])


def _bin(prefix: Path, name: str) -> Path:
    return prefix / ("Scripts" if os.name == "nt" else "bin") / (name + (".exe" if os.name == "nt" else ""))


# --- the command line ------------------------------------------------------------------------------------------

def test_python_m_version(tmp_path):
    out = _run([sys.executable, "-m", "sam2_plugins", "--version"], tmp_path).stdout
    assert out.strip() == f"sam2-plugins {_version()}"


def test_console_script_version(tmp_path):
    script = _bin(Path(sysconfig.get_path("scripts")), "sam2-plugins")
    if not script.exists():
        found = shutil.which("sam2-plugins")
        if found is None:
            pytest.skip("the sam2-plugins console script is not installed (pip install -e .)")
        script = Path(found)
    assert _run([script, "--version"], tmp_path).stdout.strip() == f"sam2-plugins {_version()}"


def test_python_m_track_help(tmp_path):
    out = _run([sys.executable, "-m", "sam2_plugins", "track", "--help"], tmp_path).stdout
    assert out.startswith("usage: sam2-plugins track")
    assert "--prompts" in out and "--out" in out


def test_pyproject_metadata():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert "comfyui" not in project["name"].lower()  # Comfy registry rule
    extras = project["optional-dependencies"]
    assert extras["comfy"] == []  # ComfyUI is not on PyPI: nothing to pin against it
    assert any(r.startswith("napari") and ">=0.9" in r for r in extras["napari"])
    assert any(r.startswith("gradio") and ">=6" in r for r in extras["gradio"])
    assert project["scripts"]["sam2-plugins"] == "sam2_plugins.cli:main"


# --- the adapter packages --------------------------------------------------------------------------------------

def test_adapters_import_without_their_frameworks(tmp_path):
    got = _python(f"""
        import importlib, json, sys
        files = {{name: importlib.import_module(name).__file__ for name in {ADAPTERS!r}}}
        docs = {{name: bool((sys.modules[name].__doc__ or "").strip()) for name in {ADAPTERS!r}}}
        loaded = sorted(m for m in sys.modules if m.partition(".")[0] in {FRAMEWORKS!r})
        print(json.dumps({{"files": files, "docs": docs, "loaded": loaded}}))
    """, tmp_path)
    for name in ADAPTERS:
        assert Path(got["files"][name]).parent.name == name
        assert got["docs"][name], f"{name} has no docstring"
    assert got["loaded"] == []


# --- the checkout as a ComfyUI custom node folder ---------------------------------------------------------------

def test_checkout_loads_as_comfyui_custom_node(tmp_path):
    # As ComfyUI's loader does for a folder in custom_nodes/: a module name made from the folder's path, the
    # module in sys.modules before it runs, and the folder itself not on sys.path. Then the same under a plain
    # name with explicit submodule_search_locations.
    got = _python(f"""
        import importlib.util, json, os, sys
        root = {str(ROOT)!r}
        sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != root]
        seen = {{}}
        for name, locations in ((root.replace(".", "_x_"), None), ("sam2_plugins_custom_node", [root])):
            kwargs = {{}} if locations is None else {{"submodule_search_locations": locations}}
            spec = importlib.util.spec_from_file_location(name, os.path.join(root, "__init__.py"), **kwargs)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
            seen[name] = {{
                "mappings": type(getattr(module, "NODE_CLASS_MAPPINGS", None)).__name__,
                "display": type(getattr(module, "NODE_DISPLAY_NAME_MAPPINGS", None)).__name__,
                "all": list(getattr(module, "__all__", [])),
                "nodes_file": sys.modules[name + ".comfy_nodes"].__file__,
            }}
        loaded = sorted(m for m in sys.modules if m.partition(".")[0] in {FRAMEWORKS!r})
        print(json.dumps({{"seen": seen, "loaded": loaded}}))
    """, tmp_path)
    assert len(got["seen"]) == 2
    for name, seen in got["seen"].items():
        assert seen["mappings"] == "dict" and seen["display"] == "dict", (name, seen)
        assert {"NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"} <= set(seen["all"])
        assert Path(seen["nodes_file"]) == ROOT / "comfy_nodes" / "__init__.py"
    assert got["loaded"] == []  # the pack imports without ComfyUI (pytest imports the root __init__.py too)


@pytest.mark.parametrize("folder", ["sam2-plugins", "sam2_plugins_checkout"])
def test_pytest_runs_in_a_checkout_with_the_root_init(tmp_path, folder):
    # pytest >= 8 collects a rootdir holding __init__.py as a package and imports that file before the first
    # test: as a plain module "__init__" when the folder name is not an identifier (a default clone folder),
    # as a package otherwise. Both must import, or every test of the checkout errors.
    checkout = tmp_path / folder
    (checkout / "tests").mkdir(parents=True)
    shutil.copy2(ROOT / "__init__.py", checkout / "__init__.py")
    shutil.copytree(ROOT / "comfy_nodes", checkout / "comfy_nodes", ignore=shutil.ignore_patterns("__pycache__"))
    (checkout / "pyproject.toml").write_text('[tool.pytest.ini_options]\ntestpaths = ["tests"]\n')
    (checkout / "tests" / "test_one.py").write_text("def test_one():\n    pass\n")
    out = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], checkout)
    assert "1 passed" in out.stdout, out.stdout


# --- the wheel -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One wheel of a clean copy of the checkout (no stale build/ or egg-info), built offline."""
    try:
        setuptools_version = metadata.version("setuptools")
    except metadata.PackageNotFoundError:
        pytest.skip("setuptools is not installed here, so pip cannot build the wheel offline")
    if int(setuptools_version.split(".")[0]) < 77:
        pytest.skip(f"setuptools {setuptools_version} < 77 (pyproject's build requirement): cannot build offline")
    base = tmp_path_factory.mktemp("wheel")
    source = base / "checkout"
    def junk(folder: str, names: list[str]) -> list[str]:
        top = Path(folder) == ROOT
        return [n for n in names if n == "__pycache__" or n.endswith(".egg-info") or (top and n in BUILD_JUNK)]

    shutil.copytree(ROOT, source, ignore=junk)
    _run([sys.executable, "-m", "pip", "wheel", source, "-w", base / "dist", "--no-deps", "--no-build-isolation",
          "--no-index", "-q"], base, timeout=300)
    wheels = list((base / "dist").glob("*.whl"))
    assert len(wheels) == 1, wheels
    return source, wheels[0]


def test_wheel_contents(built):
    source, wheel = built
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        meta = zf.read(f"{dist_info}/METADATA").decode()
        entry_points = zf.read(f"{dist_info}/entry_points.txt").decode()
    core = sorted(p.relative_to(source / "src").as_posix() for p in (source / "src" / "sam2_plugins").rglob("*.py"))
    assert any("/" in p.removeprefix("sam2_plugins/") for p in core)  # the core has subpackages
    missing = [p for p in core if p not in names]
    assert not missing, f"core modules missing from the wheel: {missing}"
    for adapter in ADAPTERS:
        assert f"{adapter}/__init__.py" in names
    for data in PACKAGE_DATA:
        assert data in names
    assert not [n for n in names if n.split("/")[0] in ("tests", "benchmarks", "docs", "src", "__init__.py")]
    assert "Name: sam2-plugins" in meta and f"Version: {_version(source)}" in meta
    for extra in ("napari", "comfy", "gradio", "dev"):
        assert f"Provides-Extra: {extra}" in meta
    assert "sam2-plugins = sam2_plugins.cli:main" in entry_points


def test_wheel_installs_and_runs(built, tmp_path):
    _, wheel = built
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv], tmp_path)
    python = _bin(venv, "python")
    # The outer pip is visible through the system site-packages and installs into the venv it runs in.
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheel], tmp_path)
    got = _python(f"""
        import importlib, json
        files = {{name: importlib.import_module(name).__file__ for name in {("sam2_plugins", *ADAPTERS)!r}}}
        print(json.dumps(files))
    """, tmp_path, python)
    site = Path(_python("import json, sysconfig; print(json.dumps(sysconfig.get_path('purelib')))", tmp_path,
                        python))
    for name, file in got.items():
        assert Path(file).parent == site / name, f"{name} imported from {file}, not from the installed wheel"
    out = _run([_bin(venv, "sam2-plugins"), "--version"], tmp_path).stdout
    assert out.strip() == f"sam2-plugins {_version()}"
