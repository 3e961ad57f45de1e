"""Projects with two or three annotators whose labels differ by known perturbations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_atlas_annotate.classes import ABDOMEN_ATLAS_CLASSES
from napari_atlas_annotate.grade_sheet import GradeSheet
from napari_atlas_annotate.io import save_nifti
from napari_atlas_annotate.phantoms.ct import make_ct_phantom
from napari_atlas_annotate.project import ImageRef, Project
from napari_atlas_annotate.spine_grades import CONDITIONS, GRADES, LEVELS

SHAPE = (28, 48, 48)
LIVER, KIDNEY_LEFT, SPLEEN = (
    ABDOMEN_ATLAS_CLASSES.index(n) + 1 for n in ("liver", "kidney_left", "spleen")
)


def perturb(truth: np.ndarray, kind: str) -> np.ndarray:
    """Annotator B's label: ``truth`` with one known change."""
    out = truth.copy()
    if kind == "dilate_liver":  # liver grows by one voxel into background only
        grown = ndimage.binary_dilation(truth == LIVER)
        out[grown & (truth == 0)] = LIVER
    elif kind == "shift_kidney":  # left kidney moved one voxel along x
        kidney = truth == KIDNEY_LEFT
        out[kidney] = 0
        out[np.roll(kidney, 1, axis=2) & (out == 0)] = KIDNEY_LEFT
    elif kind == "erase_spleen_slice":  # the spleen's middle slice forgotten
        zs = np.nonzero((truth == SPLEEN).any(axis=(1, 2)))[0]
        z = int(zs[len(zs) // 2])
        out[z][out[z] == SPLEEN] = 0
    elif kind == "drop_spleen":  # spleen not labelled at all
        out[truth == SPLEEN] = 0
    else:
        raise ValueError(kind)
    return out


def _organ_project(folder, perturbations: dict[str, list[str]], n_cases: int = 2):
    project = Project.create(folder / "proj", task="organs", classes=list(ABDOMEN_ATLAS_CLASSES))
    truths = {}
    for seed in range(n_cases):
        image, label, _ = make_ct_phantom(seed, shape=SHAPE)
        case_id = f"ct{seed:02d}"
        path = save_nifti(image, folder / f"{case_id}.nii.gz")
        project.add_case(case_id, [ImageRef(str(path), "CT")])
        truth = label.array.astype(np.uint8)
        truths[case_id] = truth
        project.save_mask_version(case_id, truth, kind="imported", annotator="alice")
        for who, kinds in perturbations.items():
            labels = truth
            for kind in kinds:
                labels = perturb(labels, kind)
            project.save_mask_version(case_id, labels, kind="imported", annotator=who)
    return project, truths


@pytest.fixture
def organ_project(tmp_path):
    """Two CT phantom cases; alice = truth; bob = dilated liver, shifted kidney, one
    spleen slice erased (case ct00) or dropped spleen (case ct01 also)."""
    project, truths = _organ_project(
        tmp_path, {"bob": ["dilate_liver", "shift_kidney", "erase_spleen_slice"]}
    )
    # ct01: bob also misses the whole spleen, so it is the more disputed case.
    project.save_mask_version(
        "ct01",
        perturb(project.read_mask(project.latest_version("ct01", annotator="bob")), "drop_spleen"),
        kind="corrected",
        annotator="bob",
    )
    yield project, truths
    project.close()


def random_sheet(rng: np.random.Generator) -> GradeSheet:
    sheet = GradeSheet()
    for c in CONDITIONS:
        for lv in LEVELS:
            sheet.set_grade(c, lv, GRADES[int(rng.choice(3, p=[0.6, 0.25, 0.15]))])
    return sheet


@pytest.fixture
def spine_project(tmp_path):
    """Two spine studies graded by alice and bob; bob changes a known set of cells."""
    rng = np.random.default_rng(7)
    project = Project.create(tmp_path / "spine", task="spine")
    sheets = {}
    for i in range(2):
        case_id = f"mr{i:02d}"
        volume_path = save_nifti(
            make_ct_phantom(i, shape=(8, 16, 16))[0], tmp_path / f"{case_id}.nii.gz"
        )
        project.add_case(case_id, [ImageRef(str(volume_path), "Sagittal T2/STIR")])
        a = random_sheet(rng)
        b = GradeSheet.from_dict(a.to_dict())
        flips = rng.choice(25, size=4 + 4 * i, replace=False)
        for k in flips:
            c, lv = GradeSheet.cells()[k]
            g = GRADES.index(a.grade(c, lv))
            b.set_grade(c, lv, GRADES[(g + 1 + int(rng.integers(2))) % 3])
        project.save_grades_version(case_id, a, kind="imported", annotator="alice")
        project.save_grades_version(case_id, b, kind="corrected", annotator="bob")
        sheets[case_id] = {"alice": a, "bob": b}
    yield project, sheets
    project.close()
