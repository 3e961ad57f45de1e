"""Small phantom projects for the export tests: organ CTs written as DICOM carrying known
patient identifiers, one NIfTI-sourced case on a left-handed grid, and a spine study; and
projects made the README's way from ``atlas-annotate phantoms --format dicom``, whose case
ids are the source PatientIDs."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from napari_atlas_annotate.grade_sheet import GradeSheet, LevelPoint
from napari_atlas_annotate.io import load_nifti, save_nifti
from napari_atlas_annotate.io.dicom_writer import write_dicom_series
from napari_atlas_annotate.phantoms.writer import write_phantoms
from napari_atlas_annotate.project import ImageRef, Project
from napari_atlas_annotate.project.importing import import_labels
from napari_atlas_annotate.project.sources import cases_from_manifest
from napari_atlas_annotate.spine_grades import CONDITIONS, GRADES, LEVELS
from napari_atlas_annotate.volume import LPS_TO_RAS, Volume

PATIENT_NAME = "Doe^Jane"
PATIENT_ID = "PID-12345"
IDENTIFIERS = (PATIENT_NAME, PATIENT_ID)

#: (z, y, x) -> RAS affines: axial LPS-like, and an oblique one.
AXIAL = np.array([[0, 0, -0.8, 40], [0, -0.7, 0, 30], [2.5, 0, 0, -20], [0, 0, 0, 1.0]])
_c, _s = np.cos(0.3), np.sin(0.3)
OBLIQUE = np.eye(4)
OBLIQUE[:3, 0] = (0, 0, 2.0)  # z: superior, 2 mm
OBLIQUE[:3, 1] = np.array((-_s, -_c, 0)) * 0.7  # y: rotated 0.3 rad in the axial plane
OBLIQUE[:3, 2] = np.array((-_c, _s, 0)) * 0.8
OBLIQUE[:3, 3] = (10, 5, -7)
#: z axis pointing opposite to row x column (left-handed in DICOM terms): NIfTI case.
LEFT_HANDED = np.array([[0, 0, 0.9, -5], [0, 0.9, 0, -6], [-3.0, 0, 0, 11], [0, 0, 0, 1.0]])


def organ_phantom(seed: int, shape=(10, 24, 20), n_classes: int = 9):
    """An int16 CT with distinct blobs per class and its label map (not symmetric in any
    axis, so a flipped or shifted frame is detected)."""
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(shape)
    labels = np.zeros(shape, np.uint8)
    for cls in range(1, n_classes + 1):
        cz, cy, cx = (
            rng.integers(1, shape[0] - 1),
            rng.integers(2, shape[1] - 2),
            rng.integers(2, shape[2] - 2),
        )
        r = rng.uniform(1.5, 4.0)
        blob = ((z - cz) / 1.5) ** 2 + ((y - cy) / r) ** 2 + ((x - cx) / r) ** 2 < 1
        labels[blob & (labels == 0)] = cls
    labels[0, :3, :2] = 5  # marks the first slice's corner: mirroring shows
    image = (rng.normal(0, 20, shape) + labels * 40 - 100).astype(np.int16)
    return image, labels


def _grades_sheet(seed: int) -> GradeSheet:
    rng = np.random.default_rng(seed)
    sheet = GradeSheet()
    for c in CONDITIONS:
        for lv in LEVELS:
            sheet.set_grade(c, lv, GRADES[int(rng.integers(0, 3))])
    sheet.set_grade("right_subarticular_stenosis", "l1_l2", None)  # a missing cell
    sheet.set_point("spinal_canal_stenosis", "l4_l5", LevelPoint("Sagittal T2/STIR", 4, 10.5, 7.25))
    sheet.set_point(
        "left_neural_foraminal_narrowing", "l5_s1", LevelPoint("Sagittal T1", 2, 3.0, 9.0)
    )
    sheet.set_point("left_subarticular_stenosis", "l3_l4", LevelPoint("Axial T2", 3, 6.0, 5.0))
    return sheet


@pytest.fixture(scope="session")
def organ_project(tmp_path_factory):
    """Organs project: 2 DICOM cases (final + corrected), 1 NIfTI case (final), 1 case with
    only a proposal. Source folders are named after the patient (as real exports often are).
    Returns (project folder, {case_id: (image Volume, labels)})."""
    base = tmp_path_factory.mktemp("organs")
    project = Project.create(base / "proj", task="organs", name="Abdomen")
    truth = {}
    for i, (case_id, affine) in enumerate((("case0", AXIAL), ("case1", OBLIQUE))):
        image, labels = organ_phantom(i)
        vol = Volume(image, affine, "CT")
        folder = base / f"{PATIENT_NAME}_{PATIENT_ID}" / f"ct{i}"
        write_dicom_series(
            vol,
            folder,
            modality="CT",
            patient_name=PATIENT_NAME,
            patient_id=PATIENT_ID,
            series_description="CT abdomen",
            extra={"PatientBirthDate": "19700101", "InstitutionName": "General"},
        )
        project.add_case(case_id, [ImageRef(str(folder), "CT")])
        truth[case_id] = (vol, labels)
    image, labels = organ_phantom(7, shape=(8, 20, 18))
    vol = Volume(image, LEFT_HANDED, "CT")
    save_nifti(vol, base / "nifti_case.nii.gz")
    project.add_case("case2", [ImageRef(str(base / "nifti_case.nii.gz"), "CT")])
    truth["case2"] = (vol, labels)
    project.add_case("case3", [ImageRef(str(base / "nifti_case.nii.gz"), "CT")])

    for case_id in ("case0", "case1", "case2", "case3"):
        labels = truth.get(case_id, truth["case2"])[1]
        noisy = labels.copy()
        noisy[noisy == 3] = 0
        project.save_mask_version(case_id, noisy, kind="proposal", model_version="round-1")
    project.submit_mask("case0", "ann", truth["case0"][1], base=None)
    final0 = project.save_mask_version("case0", truth["case0"][1], kind="final", annotator="lead")
    project.record_audit("case0", "lead", "finalize", version=final0.id)
    project.submit_mask("case1", "ann", truth["case1"][1], base=None)
    final2 = project.save_mask_version("case2", truth["case2"][1], kind="final", annotator="lead")
    project.record_audit("case2", "lead", "finalize", version=final2.id)
    project.close()
    return base / "proj", truth


@pytest.fixture(scope="session")
def spine_project(tmp_path_factory):
    """Spine project: one DICOM study (3 MR series) with a final grade sheet, one without."""
    base = tmp_path_factory.mktemp("spine")
    project = Project.create(base / "proj", task="spine", name="Lumbar")
    sheets = {}
    for i, case_id in enumerate(("study0", "study1")):
        refs = []
        for j, desc in enumerate(("Sagittal T1", "Sagittal T2/STIR", "Axial T2")):
            vol = Volume(np.full((5, 12, 12), 100 + j, np.int16), AXIAL, "MR")
            folder = base / f"{PATIENT_NAME}" / case_id / f"s{j}"
            write_dicom_series(
                vol,
                folder,
                modality="MR",
                patient_name=PATIENT_NAME,
                patient_id=PATIENT_ID,
                series_description=desc,
                series_number=j + 1,
            )
            refs.append(ImageRef(str(folder), desc))
        project.add_case(case_id, refs)
        sheets[case_id] = _grades_sheet(i)
    version = project.save_grades_version(
        "study0", sheets["study0"], kind="final", annotator="lead"
    )
    project.record_audit("study0", "lead", "finalize", version=version.id)
    project.close()
    return base / "proj", sheets


def all_file_bytes(root: Path):
    """(path, raw bytes + gzip-decompressed content) of every file under ``root``."""
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data += gzip.decompress(data)
        yield path, data


def assert_no_identifiers(root: Path) -> int:
    """Every byte of every file: neither identifier string appears. Returns files scanned."""
    n = 0
    for path, data in all_file_bytes(root):
        n += 1
        low = data.lower()
        for ident in IDENTIFIERS:
            for variant in (ident, ident.replace("^", " ")):
                assert variant.lower().encode() not in low, f"{variant!r} found in {path}"
    return n


@pytest.fixture
def no_identifiers():
    """``check(root)``: assert neither identifier is in any byte of any file under root."""
    return assert_no_identifiers


@pytest.fixture
def identifiers():
    return IDENTIFIERS


@pytest.fixture(scope="session")
def id_phantoms(tmp_path_factory):
    """``atlas-annotate phantoms --ct 3 --mri 2 --format dicom`` (small CTs): every case's
    DICOM PatientID and PatientName are its case id (``ct_000``, RSNA-style study ids)."""
    out = tmp_path_factory.mktemp("id_phantoms")
    return write_phantoms(out, 3, 2, 0, fmt="dicom", ct_shape=(16, 48, 48))


@pytest.fixture
def id_named_organs(id_phantoms, tmp_path):
    """Organ project built like the README's (``add data/manifest.json``): ``ct_000``
    corrected by ann, ``ct_001`` imported by ts, ``ct_002`` without labels, and ``scan-a``
    (ct_002's images under a case id that names no patient) corrected by ann. Returns
    (project folder, {case id: truth labels})."""
    project = Project.create(tmp_path / "organs", task="organs")
    cases = cases_from_manifest(id_phantoms, "organs")
    for case in cases:
        project.add_case(case.id, case.images, truth=case.truth, source=case.source)
    project.add_case("scan-a", cases[2].images)
    truth = {c.id: load_nifti(c.truth["label"]).array for c in cases}
    truth["scan-a"] = truth["ct_002"]
    project.submit_mask("ct_000", "ann", truth["ct_000"], base=None)
    import_labels(project, "ct_001", "ts", cases[1].truth["label"])
    project.submit_mask("scan-a", "ann", truth["scan-a"], base=None)
    project.close()
    return tmp_path / "organs", truth


@pytest.fixture
def id_named_spine(id_phantoms, tmp_path):
    """Spine project from the same phantoms: the first study's RSNA grades imported by
    rsna, the second study without grades. Returns (project folder, manifest entries)."""
    project = Project.create(tmp_path / "spine", task="spine")
    for case in cases_from_manifest(id_phantoms, "spine"):
        project.add_case(case.id, case.images, truth=case.truth, source=case.source)
    entries = [e for e in json.loads(id_phantoms.read_text())["cases"] if e["task"] == "spine"]
    root = id_phantoms.parent
    import_labels(
        project,
        str(entries[0]["study_id"]),
        "rsna",
        root / entries[0]["grades"],
        study_id=entries[0]["study_id"],
        points=root / entries[0]["points"],
    )
    project.close()
    return tmp_path / "spine", entries


#: Visit dates and times of the source CT (``make_organ_project``): no pseudonymised export
#: may carry them.
SOURCE_DATES = {
    "StudyDate": "19990203",
    "StudyTime": "101517",
    "SeriesDate": "19990203",
    "SeriesTime": "101517",
    "AcquisitionDate": "19990203",
    "AcquisitionTime": "101517",
    "PatientBirthDate": "19450607",
}


@pytest.fixture
def source_dates():
    """The visit dates and times :func:`make_organ_project` writes into its DICOM CT."""
    return dict(SOURCE_DATES)


def _final_case(project: Project, case_id: str, labels: np.ndarray) -> None:
    version = project.save_mask_version(case_id, labels, kind="final", annotator="lead")
    project.record_audit(case_id, "lead", "finalize", version=version.id)


@pytest.fixture
def make_organ_project():
    """``make(project_folder, image_folder, affine, source="dicom", shape=(12, 24, 20))``:
    an organs project with one case ``ct`` finalized on the phantom's truth; the CT is a
    DICOM series (carrying :data:`IDENTIFIERS` and :data:`SOURCE_DATES`) or a NIfTI file in
    ``image_folder``. ``affine`` is the (z, y, x) -> RAS affine the CT is written with (a
    left-handed one is written z-flipped as DICOM requires, the truth kept on ``affine``).
    Returns (project folder, truth labels, affine of the truth)."""

    def make(project_folder, image_folder, affine, source="dicom", shape=(12, 24, 20)):
        image, labels = organ_phantom(3, shape=shape)
        affine = np.asarray(affine, float)
        image_folder = Path(image_folder)
        if source == "dicom":
            vol, written_labels = Volume(image, affine, "CT"), labels
            lps = LPS_TO_RAS[:3, :3] @ vol.directions
            if np.dot(np.cross(lps[:, 2], lps[:, 1]), lps[:, 0]) < 0:  # left-handed
                flipped = affine.copy()
                flipped[:3, 3] += (shape[0] - 1) * affine[:3, 0]
                flipped[:3, 0] *= -1
                vol, written_labels = Volume(image[::-1].copy(), flipped, "CT"), labels[::-1]
            write_dicom_series(
                vol,
                image_folder,
                modality="CT",
                patient_name=PATIENT_NAME,
                patient_id=PATIENT_ID,
                extra=SOURCE_DATES,
            )
            ref = ImageRef(str(image_folder), "CT")
        else:
            image_folder.mkdir(parents=True, exist_ok=True)
            save_nifti(Volume(image, affine, "CT"), image_folder / "ct.nii.gz")
            ref, written_labels = ImageRef(str(image_folder / "ct.nii.gz"), "CT"), labels
        project = Project.create(project_folder, task="organs", name="Geometry")
        project.add_case("ct", [ref])
        loaded = project.load_image("ct", 0)
        if not np.allclose(loaded.affine, vol.affine if source == "dicom" else affine):
            raise AssertionError("the phantom did not load on the grid it was written with")
        _final_case(project, "ct", written_labels)
        project.close()
        return Path(project_folder), labels, affine

    return make
