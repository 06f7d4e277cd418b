"""The package as napari and pip see it."""

import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_manifest_is_valid_and_is_the_top_level_file():
    npe2 = pytest.importorskip("npe2")
    manifest = npe2.PluginManifest.from_distribution("napari-geoseg")
    assert manifest.name == "napari-geoseg"
    shipped = resources.files("napari_geoseg").joinpath("napari.yaml").read_text()
    assert shipped == (ROOT / "napari.yaml").read_text()
    # A real file: a symbolic link builds a broken package from a Windows checkout.
    assert not (ROOT / "src" / "napari_geoseg" / "napari.yaml").is_symlink()


def test_readme_links_are_absolute_for_the_hub_and_pypi():
    import re

    text = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)]+)\)", text)
    relative = [t for t in targets if not re.match(r"(https?://|#|mailto:)", t)]
    assert not relative, relative


def test_npe2_validate_command():
    pytest.importorskip("npe2")
    result = subprocess.run([sys.executable, "-m", "npe2", "validate", "napari-geoseg"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stdout


def test_importing_the_package_does_not_import_torch_or_napari():
    code = "import sys, napari_geoseg; print('torch' in sys.modules, 'napari' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


def test_nothing_below_the_faces_imports_napari_or_qt():
    for path in (ROOT / "src" / "napari_geoseg").rglob("*.py"):
        if path.parent.name in ("nn", "data", "io", "train"):
            text = path.read_text()
            for banned in ("import napari", "from napari ", "qtpy", "PyQt", "magicgui"):
                assert banned not in text, f"{path} mentions {banned}"


def test_ruff_is_clean():
    pytest.importorskip("ruff")
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "src", "tests", "benchmarks", ".ci"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr

