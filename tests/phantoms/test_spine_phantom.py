"""Lumbar MRI phantom: determinism, size, grades visible in the image, points in place."""

from __future__ import annotations

import numpy as np
import pytest

from napari_atlas_annotate.phantoms import make_spine_phantom, mr_site, sample_grades
from napari_atlas_annotate.spine_grades import (
    CONDITIONS,
    GRADE_COLUMNS,
    GRADES,
    LEVELS,
    SERIES_DESCRIPTIONS,
    SERIES_FOR_CONDITION,
)

FORCED = {
    "spinal_canal_stenosis_l4_l5": "Severe",
    "spinal_canal_stenosis_l2_l3": "Normal/Mild",
    "left_neural_foraminal_narrowing_l3_l4": "Severe",
    "left_neural_foraminal_narrowing_l1_l2": "Normal/Mild",
    "right_subarticular_stenosis_l5_s1": "Severe",
    "right_subarticular_stenosis_l2_l3": "Normal/Mild",
}


@pytest.fixture(scope="module")
def cases():
    return [
        make_spine_phantom(seed, site=site, grades=FORCED)
        for seed, site in ((0, 0), (1, 0), (2, 1))
    ]


def test_series_layout_and_size(cases):
    case = cases[0]
    assert list(case.series) == list(SERIES_DESCRIPTIONS)
    sag1, sag2, ax = (case.series[d] for d in SERIES_DESCRIPTIONS)
    assert sag1.shape == sag2.shape == (15, 128, 128)
    assert ax.shape[1:] == (96, 96) and 30 <= ax.shape[0] <= 60
    assert sag1.orientation == ("R", "I", "P") and ax.orientation == ("S", "P", "L")
    assert all(v.array.dtype == np.int16 and v.modality == "MR" for v in case.series.values())
    assert sum(v.array.nbytes for v in case.series.values()) < 2 * 1024 * 1024
    assert 3.0 < sag1.spacing[0] < 4.6 and 1.4 < sag1.spacing[1] < 2.2
    for vol in case.series.values():  # right-handed in LPS: DICOM-writable as is
        d = np.diag([-1, -1, 1]) @ vol.directions
        assert np.allclose(np.cross(d[:, 2], d[:, 1]), d[:, 0])
    assert len(case.grades) == 25 and set(case.grades) == set(GRADE_COLUMNS)
    assert set(case.grades.values()) <= set(GRADES)
    assert len(case.points) == 25


def test_deterministic_and_seed_dependent():
    a, b, c = make_spine_phantom(5), make_spine_phantom(5), make_spine_phantom(6)
    for d in SERIES_DESCRIPTIONS:
        assert a.series[d].array.tobytes() == b.series[d].array.tobytes()
        assert np.array_equal(a.series[d].affine, b.series[d].affine)
        assert not np.array_equal(a.series[d].array, c.series[d].array)
    assert a.grades == b.grades and a.points == b.points and a.study_id == b.study_id
    assert a.study_id != c.study_id


def test_grade_override_is_rendered_fraction(cases):
    for case in cases:
        for col, grade in FORCED.items():
            assert case.grades[col] == grade
        frac = case.info["narrowing"]["spinal_canal_stenosis"]
        assert frac["l4_l5"] > 0.7 and frac["l2_l3"] < 0.25
    with pytest.raises(ValueError):
        make_spine_phantom(0, grades={"spinal_canal_stenosis_l4_l5": "Terrible"})


def _bright(img, x, y, dx, dy, frac):
    """Bright pixels (> frac * reference) in a window around (x, y)."""
    x, y = int(round(x)), int(round(y))
    win = img[max(y - dy, 0) : y + dy + 1, max(x - dx, 0) : x + dx + 1]
    return int((win > frac * np.percentile(img, 99.5)).sum())


def test_canal_narrowing_is_visible_on_sagittal_t2(cases):
    for case in cases:
        widths = {}
        for lv in LEVELS:
            p = case.point("spinal_canal_stenosis", lv)
            img = case.series["Sagittal T2/STIR"].array[p.instance_number - 1].astype(float)
            widths[lv] = _bright(img, p.x, p.y, 10, 1, 0.5) / 3  # CSF width, px per row
        normal = [
            widths[lv]
            for lv in LEVELS
            if case.grades[f"spinal_canal_stenosis_{lv}"] == "Normal/Mild"
        ]
        assert widths["l4_l5"] < 0.6 * min(normal), widths


def test_foraminal_fat_is_obliterated_on_sagittal_t1(cases):
    for case in cases:
        fat = {}
        for lv in LEVELS:
            p = case.point("left_neural_foraminal_narrowing", lv)
            img = case.series["Sagittal T1"].array[p.instance_number - 1].astype(float)
            fat[lv] = _bright(img, p.x, p.y, 5, 6, 0.6)
        normal = [
            fat[lv]
            for lv in LEVELS
            if case.grades[f"left_neural_foraminal_narrowing_{lv}"] == "Normal/Mild"
        ]
        assert fat["l3_l4"] < 0.5 * min(normal), fat


def test_lateral_recess_narrowing_is_visible_on_axial_t2(cases):
    for case in cases:
        space = {}
        for lv in LEVELS:
            p = case.point("right_subarticular_stenosis", lv)
            img = case.series["Axial T2"].array[p.instance_number - 1].astype(float)
            space[lv] = _bright(img, p.x, p.y, 2, 2, 0.5)
        assert space["l5_s1"] < 0.7 * space["l2_l3"], space


def test_points_inside_images_and_at_their_disc(cases):
    for case in cases:
        for p in case.points:
            desc = SERIES_FOR_CONDITION[p.condition]
            vol = case.series[desc]
            assert p.series_id == case.series_ids[desc]
            assert 1 <= p.instance_number <= vol.shape[0]
            assert 0 <= p.x < vol.shape[2] and 0 <= p.y < vol.shape[1]
            ras = vol.index_to_world([p.instance_number - 1, p.y, p.x])
            disc_s = case.info["disc_center_s_mm"][p.level]
            assert abs(ras[2] - disc_s) < 8.0, (p, ras, disc_s)


def test_series_share_one_patient_frame(cases):
    """The canal point found on the sagittal T2 lands in the CSF of the axial T2."""
    for case in cases:
        ax = case.series["Axial T2"]
        ref = np.percentile(ax.array, 99.5)
        for lv in LEVELS:
            if case.grades[f"spinal_canal_stenosis_{lv}"] != "Normal/Mild":
                continue
            p = case.point("spinal_canal_stenosis", lv)
            sag = case.series["Sagittal T2/STIR"]
            ras = sag.index_to_world([p.instance_number - 1, p.y, p.x])
            z, y, x = np.rint(ax.world_to_index(ras)).astype(int)
            assert 0 <= z < ax.shape[0]
            assert ax.array[z, y - 1 : y + 2, x - 1 : x + 2].max() > 0.5 * ref, lv
            sub = case.point("left_subarticular_stenosis", lv)
            assert abs(sub.instance_number - 1 - z) <= 1


def test_grade_priors_roughly_rsna():
    rng = np.random.default_rng(0)
    draws = [sample_grades(rng) for _ in range(400)]
    values = np.array([[d[c] for c in GRADE_COLUMNS] for d in draws])
    freq = {g: float((values == g).mean()) for g in GRADES}
    assert 0.72 < freq["Normal/Mild"] < 0.88
    assert 0.08 < freq["Moderate"] < 0.2
    assert 0.03 < freq["Severe"] < 0.1
    sev = {
        lv: np.mean([d[f"{c}_{lv}"] == "Severe" for d in draws for c in CONDITIONS])
        for lv in LEVELS
    }
    assert sev["l4_l5"] + sev["l5_s1"] > 2 * (sev["l1_l2"] + sev["l2_l3"])


def test_site_changes_acquisition():
    assert mr_site(0) != mr_site(2)
    a, b = make_spine_phantom(3, site=0), make_spine_phantom(3, site=2)
    sa, sb = a.series["Sagittal T1"].spacing, b.series["Sagittal T1"].spacing
    assert not np.allclose(sa, sb, rtol=0.05)
    assert b.info["site_profile"] != a.info["site_profile"]
