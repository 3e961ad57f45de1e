"""The readers' consensus as a file the lead corrects in another tool, and back.

A lead who adjudicates in 3D Slicer or ITK-SNAP rather than the review dock writes the
case's consensus (majority vote of the readers' latest labels) on the CT's own grid, edits
it there, and finalizes from the edited file: every class that differs from the consensus
is taken as the lead's paint, as the review dock does with paint
(:func:`.adjudication.keep_consensus_edits`). Used by ``atlas-annotate review
--write-consensus`` and ``--finalize CASE --edited FILE``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..project import ProjectError
from .cases import class_names, load_opinions, mask_consensus
from .readers import annotator_versions, task_content


def case_consensus(project, case_id: str) -> tuple[np.ndarray, list[str]]:
    """The readers' majority-vote label map of an organ case, and its class names."""
    if task_content(project) == "grades":
        raise ProjectError(
            "--write-consensus and --edited are for organ projects (label maps); grade cells "
            "are decided with --take CELL=GRADE."
        )
    project.case(case_id)  # an unknown case is said as such, with the project's cases
    versions = annotator_versions(project, case_id)
    if not versions:
        raise ProjectError(
            f"case {case_id}: no annotator has submitted or imported labels; no consensus yet."
        )
    masks = load_opinions(project, versions)
    return mask_consensus(masks, "majority"), class_names(project, masks)[: len(project.classes)]


def write_consensus(project, case_id: str, path: Path) -> Path:
    """Write ``case_id``'s consensus on its first image's grid (atomic): a label NIfTI, or
    for a ``.seg.nrrd`` path a 3D Slicer segmentation with a named segment per class."""
    from ..io.nifti import is_nifti_path, label_dtype, save_nifti
    from ..project.slicer_segmentations import is_slicer_segmentation, write_segmentation
    from ..volume import Volume

    if not (is_slicer_segmentation(path) or is_nifti_path(path)):
        raise ProjectError(
            f"{path}: --write-consensus writes a label NIfTI (.nii.gz, .nii) or a 3D Slicer "
            "segmentation (.seg.nrrd); give a file name ending so."
        )
    if path.parent.exists() and not path.parent.is_dir():
        raise ProjectError(f"{path}: {path.parent} is a file, not a folder; give another path.")
    consensus, classes = case_consensus(project, case_id)
    _, affine = project.grid(case_id)
    if is_slicer_segmentation(path):
        written = write_segmentation(consensus, affine, classes, path)
    else:
        labels = consensus.astype(label_dtype(consensus), copy=False)
        written = save_nifti(Volume(labels, affine, metadata={}), path)
    # which readers' versions it was voted from: --edited checks they are still the latest
    used = {who: v.id for who, v in annotator_versions(project, case_id).items()}
    project.record_audit(
        case_id, "review", WRITTEN, versions=used, path=str(Path(written).resolve())
    )
    return written


#: Audit action of a consensus written for a lead to edit elsewhere.
WRITTEN = "write_consensus"


def _changed_since_written(project, case_id: str) -> str:
    """What the readers stored since the case's consensus was last written to a file
    ("" when nothing, or when none was written by --write-consensus)."""
    records = [r for r in project.audit_trail(case_id) if r["action"] == WRITTEN]
    if not records:
        return ""
    then = {who: int(v) for who, v in records[-1]["detail"].get("versions", {}).items()}
    now = {who: v.id for who, v in annotator_versions(project, case_id).items()}
    return "; ".join(
        f"{who} submitted version {version}"
        for who, version in now.items()
        if then.get(who) != version
    )


def edited_consensus(project, case_id: str, decisions: dict, path: Path) -> tuple[dict, np.ndarray]:
    """Decisions and painted map for a consensus the lead edited elsewhere (``path``: any
    label file ``import`` reads, on the case's grid)."""
    from ..project.importing import read_mask_labels
    from .adjudication import keep_consensus_edits

    if not path.exists():
        raise ProjectError(f"{path}: no such file or folder; give the edited consensus label.")
    changed = _changed_since_written(project, case_id)
    if changed:  # its unchanged voxels would be booked as the lead erasing the new labels
        raise ProjectError(
            f"case {case_id}: {changed} since its consensus was written for you to edit, so "
            "the edited file is not against the readers' labels now. Nothing was finalized. "
            f"Write it again (atlas-annotate review PROJECT --case {case_id} "
            "--write-consensus FILE), make your edits on it, then finalize."
        )
    consensus, classes = case_consensus(project, case_id)
    try:
        edited, _ = read_mask_labels(project, case_id, path)
    except ProjectError as exc:  # said as the import says it; here nothing is finalized
        said = str(exc).replace("Nothing was imported", "Nothing was finalized")
        raise ProjectError(f"--edited {said}") from None
    if path.is_dir():  # a folder of <class>.nii.gz: a class without its file was not edited
        given = {p.name.split(".nii")[0] for p in path.iterdir()}
        for value, name in enumerate(project.classes, start=1):
            if name not in given:
                edited[(consensus == value) & (edited == 0)] = value
    return keep_consensus_edits(decisions, classes, consensus, edited, case_id), edited
