"""Write a set of phantoms to disk, with a manifest saying what is where.

Layout under ``out_dir`` (paths in the manifest are relative to it)::

    manifest.json
    ct/<case>/dicom/IM00001.dcm ...     CT image, fmt="dicom" (one series per case)
    ct/<case>/ct.nii.gz                 CT image, fmt="nifti"
    ct/<case>/combined_labels.nii.gz    organ truth (always NIfTI, on the image grid)
    spine/train_images/<study_id>/<series_id>/00001.dcm ...   lumbar MRI (always DICOM)
    spine/truth/<study_id>/train.csv, train_label_coordinates.csv,
                          train_series_descriptions.csv       that study's truth
    spine/train.csv, spine/train_label_coordinates.csv,
    spine/train_series_descriptions.csv                       all studies, RSNA layout
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom.uid import generate_uid

from ..io.dicom_writer import write_dicom_series
from ..io.nifti import save_labels, save_nifti
from ..spine_grades import (
    SERIES_DESCRIPTIONS,
    write_coordinates_csv,
    write_grades_csv,
    write_series_descriptions_csv,
)
from .ct import CLASSES, DEFAULT_CT_SHAPE, make_ct_phantom
from .spine import make_spine_phantom

MANIFEST_VERSION = 1

#: Nominal MR acquisition attributes written into each series.
_MR_EXTRA = {
    "Sagittal T1": {"RepetitionTime": "550", "EchoTime": "10", "ScanningSequence": "SE"},
    "Sagittal T2/STIR": {"RepetitionTime": "3500", "EchoTime": "100", "ScanningSequence": "SE"},
    "Axial T2": {"RepetitionTime": "4000", "EchoTime": "100", "ScanningSequence": "SE"},
}


def case_seed(seed: int, index: int, kind: int) -> int:
    """Seed of case ``index`` of a set (``kind`` 1 = CT, 2 = MRI): independent streams."""
    return int(np.random.SeedSequence([int(seed), int(index), int(kind)]).generate_state(1)[0])


def write_phantoms(
    out_dir: str | Path,
    n_ct: int,
    n_mri: int,
    seed: int,
    fmt: str = "dicom",
    site: int = 0,
    ct_shape: tuple[int, int, int] | None = None,
    axial_stacks: Sequence[str] = (),
) -> Path:
    """Write ``n_ct`` CT organ cases and ``n_mri`` lumbar MRI studies; return the manifest.

    Parameters
    ----------
    out_dir
        Output folder (created; existing files of the same names are overwritten).
    n_ct, n_mri
        Number of CT cases and MRI studies.
    seed
        Set seed; case ``i`` uses :func:`case_seed` so the set is reproducible.
    fmt
        ``"dicom"`` or ``"nifti"`` for the CT images. CT truth labels are always NIfTI
        (``save_labels`` on the image grid). Lumbar MRI is always written as DICOM, three
        series per study (``Sagittal T1``, ``Sagittal T2/STIR``, ``Axial T2``) sharing
        StudyInstanceUID and FrameOfReferenceUID, as RSNA distributes it; ``fmt`` does not
        apply to it.
    site
        Acquisition site of every case (0 = training site).
    ct_shape
        CT array shape ``(z, y, x)``; default ``(96, 160, 160)``.
    axial_stacks
        Levels at which each MRI study's ``Axial T2`` is acquired as an angled stack of
        its own (one series of several stacks; see
        :func:`~napari_atlas_annotate.phantoms.spine.make_spine_phantom`).

    Returns
    -------
    Path
        ``out_dir/manifest.json``: ``{"version", "seed", "site", "format", "cases": [...]}``
        with per case ``id``, ``task`` (``"organs"`` or ``"spine"``), ``images``
        (``[{"path", "description"}]``), ``label`` (organs; ``None`` for spine),
        ``classes`` (organs), ``grades``/``points``/``series_descriptions`` (spine CSVs)
        and ``study_id`` (spine).
    """
    if fmt not in ("dicom", "nifti"):
        raise ValueError(f"format must be 'dicom' or 'nifti', not {fmt!r}")
    if n_ct < 0 or n_mri < 0:
        raise ValueError("case counts must be >= 0")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shape = tuple(ct_shape) if ct_shape is not None else DEFAULT_CT_SHAPE
    prefix = f"site{site}_" if site else ""
    cases = []
    for i in range(n_ct):
        cases.append(_write_ct(out, f"{prefix}ct_{i:03d}", case_seed(seed, i, 1), site, shape, fmt))
    all_grades, all_points, all_series = {}, [], []
    for i in range(n_mri):
        entry, case = _write_spine(out, case_seed(seed, i, 2), site, axial_stacks)
        cases.append(entry)
        all_grades[case.study_id] = case.grades
        all_points.extend(case.points)
        all_series.extend((case.study_id, case.series_ids[d], d) for d in SERIES_DESCRIPTIONS)
    if n_mri:
        write_grades_csv(out / "spine" / "train.csv", all_grades)
        write_coordinates_csv(out / "spine" / "train_label_coordinates.csv", all_points)
        write_series_descriptions_csv(out / "spine" / "train_series_descriptions.csv", all_series)
    manifest = {
        "version": MANIFEST_VERSION,
        "seed": int(seed),
        "site": int(site),
        "format": fmt,
        "cases": cases,
    }
    path = out / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


def _write_ct(out: Path, case_id: str, cseed: int, site: int, shape, fmt: str) -> dict:
    image, label, info = make_ct_phantom(cseed, shape=shape, site=site)
    folder = out / "ct" / case_id
    desc = info["series_description"]
    if fmt == "dicom":
        img_path = folder / "dicom"
        write_dicom_series(
            image,
            img_path,
            modality="CT",
            series_description=desc,
            series_number=1,
            patient_name=case_id,
            patient_id=case_id,
            uid_seed=f"atlas-phantom-ct-{cseed}-{site}",
            extra={"ContrastBolusAgent": "IV contrast", "BodyPartExamined": "ABDOMEN"},
        )
    else:
        img_path = save_nifti(image, folder / "ct.nii.gz")
    lab_path = save_labels(label.array, image, folder / "combined_labels.nii.gz")
    return {
        "id": case_id,
        "task": "organs",
        "images": [{"path": img_path.relative_to(out).as_posix(), "description": desc}],
        "label": lab_path.relative_to(out).as_posix(),
        "classes": list(CLASSES),
        "phase": info["phase"],
        "case_seed": cseed,
    }


def write_spine_study(case, images_root: Path, uid_base: str) -> dict[str, Path]:
    """Write a :class:`~.spine.SpineCase` as DICOM in Kaggle's RSNA layout.

    Each series goes to ``images_root/<study_id>/<series_id>/`` (an Axial T2 acquired as
    several stacks is one series of them), with UIDs derived from ``uid_base`` (the same
    case and ``uid_base`` give byte-identical files).

    Returns
    -------
    dict
        ``{SeriesDescription: series folder}``.
    """
    sid = str(case.study_id)
    study_uid = generate_uid(entropy_srcs=[uid_base, "study"])
    frame_uid = generate_uid(entropy_srcs=[uid_base, "frame"])
    folders = {}
    for desc in SERIES_DESCRIPTIONS:
        series_id = case.series_ids[desc]
        folder = images_root / sid / str(series_id)
        # the UID write_dicom_series would derive itself, shared by the stacks
        series_uid = generate_uid(entropy_srcs=[f"{uid_base}-{desc}", f"series-{series_id}-{desc}"])
        stacks = [v for v in case.series.values() if v.metadata["series_description"] == desc]
        for volume in stacks:  # one volume, or the stacks of one series
            write_dicom_series(
                volume,
                folder,
                modality="MR",
                series_description=desc,
                series_number=series_id,
                patient_name=sid,
                patient_id=sid,
                study_uid=study_uid,
                series_uid=series_uid,
                frame_of_reference_uid=frame_uid,
                uid_seed=f"{uid_base}-{desc}",
                file_prefix="",
                extra={
                    **_MR_EXTRA[desc],
                    "MagneticFieldStrength": "1.5",
                    "BodyPartExamined": "LSPINE",
                },
                first_instance=int(volume.metadata.get("first_instance", 1)),
            )
        folders[desc] = folder
    return folders


def _write_spine(out: Path, cseed: int, site: int, axial_stacks: Sequence[str] = ()):
    case = make_spine_phantom(cseed, site=site, axial_stacks=axial_stacks)
    sid = str(case.study_id)
    root = out / "spine"
    folders = write_spine_study(case, root / "train_images", f"atlas-phantom-mr-{cseed}-{site}")
    images = [
        {
            "path": folders[desc].relative_to(out).as_posix(),
            "description": desc,
            "series_id": case.series_ids[desc],
        }
        for desc in SERIES_DESCRIPTIONS
    ]
    truth = root / "truth" / sid
    grades = write_grades_csv(truth / "train.csv", {case.study_id: case.grades})
    points = write_coordinates_csv(truth / "train_label_coordinates.csv", case.points)
    series = write_series_descriptions_csv(
        truth / "train_series_descriptions.csv",
        [(case.study_id, case.series_ids[d], d) for d in SERIES_DESCRIPTIONS],
    )
    entry = {
        "id": sid,
        "task": "spine",
        "study_id": case.study_id,
        "images": images,
        "label": None,
        "grades": grades.relative_to(out).as_posix(),
        "points": points.relative_to(out).as_posix(),
        "series_descriptions": series.relative_to(out).as_posix(),
        "case_seed": cseed,
    }
    return entry, case
