"""The wheel carries the npe2 manifest, napari finds it, and it is valid."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = "napari_atlas_annotate/napari.yaml"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the sources (the checkout gets no build/ or egg-info)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "napari_atlas_annotate",
        src / "napari_atlas_annotate",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    out = tmp_path_factory.mktemp("dist")
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*cmd, "-w", str(out), str(src)], check=True, cwd=src, timeout=300)
    [whl] = out.glob("napari_atlas_annotate-*.whl")
    return whl


def test_wheel_contains_the_manifest_and_its_entry_point(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert MANIFEST in names
        assert zf.read(MANIFEST) == (ROOT / MANIFEST).read_bytes()
        [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        text = zf.read(entry_points).decode()
    assert "[napari.manifest]" in text
    assert "napari-atlas-annotate = napari_atlas_annotate:napari.yaml" in text


def test_manifest_in_wheel_is_valid(wheel, tmp_path):
    from npe2 import PluginManifest

    with zipfile.ZipFile(wheel) as zf:
        zf.extract(MANIFEST, tmp_path)
    manifest = PluginManifest.from_file(tmp_path / MANIFEST)
    assert manifest.name == "napari-atlas-annotate"
    contributions = manifest.contributions
    assert {r.command for r in contributions.readers} == {"napari-atlas-annotate.get_reader"}
    assert all(r.accepts_directories for r in contributions.readers)
    patterns = set(contributions.readers[0].filename_patterns)
    assert {"*.nii", "*.nii.gz", "*.dcm"} <= patterns
    [writer] = contributions.writers
    assert [str(t) for t in writer.layer_types] == ["labels"]
    assert {".nii", ".nii.gz"} <= set(writer.filename_extensions)
    assert {s.display_name for s in contributions.sample_data} == {
        "CT abdomen phantom (image + organ truth)",
        "Lumbar MRI phantom (3 series)",
    }


def test_installed_manifest_validates_with_imports():
    """``npe2 validate --imports``: every python_name resolves to a callable."""
    npe2 = Path(sys.executable).with_name("npe2")
    cmd = [str(npe2)] if npe2.exists() else [sys.executable, "-m", "npe2"]
    result = subprocess.run(
        [*cmd, "validate", "--imports", "napari-atlas-annotate"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stdout


def test_top_level_manifest_is_the_package_one():
    top = ROOT / "napari.yaml"
    assert top.is_symlink() or top.exists()
    assert os.path.samefile(top, ROOT / MANIFEST)
