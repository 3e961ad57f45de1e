"""The committed sample_data set is what make_sample_data.py generates."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from napari_atlas_annotate.io.nifti import load_nifti

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"


@pytest.mark.skipif(
    not (SAMPLE / "phantoms" / "manifest.json").exists(), reason="sample data not generated"
)
def test_sample_data_is_reproducible(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "make_sample_data", SAMPLE / "make_sample_data.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--out", str(tmp_path / "phantoms")]) == 0
    committed = json.loads((SAMPLE / "phantoms" / "manifest.json").read_text())
    fresh = json.loads((tmp_path / "phantoms" / "manifest.json").read_text())
    assert committed == fresh
    organ = next(c for c in committed["cases"] if c["task"] == "organs")
    for rel in (organ["images"][0]["path"], organ["label"]):
        a, b = load_nifti(SAMPLE / "phantoms" / rel), load_nifti(tmp_path / "phantoms" / rel)
        assert np.array_equal(a.array, b.array) and np.allclose(a.affine, b.affine)
    spine = next(c for c in committed["cases"] if c["task"] == "spine")
    for key in ("grades", "points"):
        assert (SAMPLE / "phantoms" / spine[key]).read_text() == (
            tmp_path / "phantoms" / spine[key]
        ).read_text()
    size = sum(p.stat().st_size for p in (SAMPLE / "phantoms").rglob("*") if p.is_file())
    assert size < 5e6
