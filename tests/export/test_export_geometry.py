"""Exports of CTs in awkward geometries overlay their image exactly, checked with
independent readers only: nibabel for NIfTI (image and label affines, and each truth voxel
landing on the same world point with the same label), pydicom for DICOM SEG (each frame's
ReferencedSOPInstanceUID and ImagePositionPatient mapped back to the source CT slice, the
rebuilt label volume compared voxel for voxel in world coordinates)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pydicom
import pytest

from napari_atlas_annotate.export import export_project
from napari_atlas_annotate.project import Project


def _rotation(axis: int, degrees: float) -> np.ndarray:
    t = np.deg2rad(degrees)
    i, j = [(1, 2), (0, 2), (0, 1)][axis]
    r = np.eye(3)
    r[i, i] = r[j, j] = np.cos(t)
    r[i, j], r[j, i] = -np.sin(t), np.sin(t)
    return r


def _affine(directions, spacing, origin) -> np.ndarray:
    """(z, y, x) -> RAS affine; ``directions``' rows are the RAS unit vectors of z, y, x."""
    affine = np.eye(4)
    affine[:3, :3] = np.asarray(directions, float).T * np.asarray(spacing, float)[None, :]
    affine[:3, 3] = origin
    return affine


_AXIAL = [[0, 0, 1], [0, -1, 0], [-1, 0, 0]]
GEOMETRIES = {
    # slices along L, rows running inferior, columns posterior (left-handed: written z-flipped)
    "sagittal": _affine([[-1, 0, 0], [0, 0, -1], [0, -1, 0]], (3.0, 0.9, 0.7), (60, -20, 100)),
    "coronal": _affine([[0, -1, 0], [0, 0, -1], [-1, 0, 0]], (2.0, 1.1, 0.6), (-30, 45, 80)),
    "flipped": _affine([[0, 0, -1], [0, -1, 0], [1, 0, 0]], (2.5, 0.8, 0.8), (-100, 120, 300)),
    "oblique": _affine(
        (_rotation(0, 20) @ np.array(_AXIAL, float).T).T, (2.0, 0.75, 0.9), (12.5, -7.25, -33)
    ),
    "anisotropic": _affine(
        (_rotation(2, -20) @ np.array(_AXIAL, float).T).T, (5.0, 0.6, 1.3), (0, 0, 0)
    ),
}


def _on_truth_points(values, affine, truth, truth_affine):
    """``values`` (an array indexed like ``affine``'s index axes) sampled at every voxel
    centre of ``truth``: (largest world distance between a truth voxel and the exported
    voxel it falls in, number of voxels whose label differs)."""
    index = np.indices(truth.shape).reshape(3, -1)
    world = truth_affine @ np.vstack([index, np.ones(index.shape[1])])
    voxel = np.linalg.inv(affine) @ world
    nearest = np.rint(voxel[:3]).astype(int)
    assert np.all((nearest >= 0) & (nearest < np.array(values.shape)[:, None]))
    back = affine @ np.vstack([nearest, np.ones(nearest.shape[1])])
    error = float(np.linalg.norm(back[:3] - world[:3], axis=0).max())
    return error, int((values[tuple(nearest)] != truth.reshape(-1)).sum())


def _nifti_overlays(image_path, label_path, truth, truth_affine):
    image, label = nib.load(str(image_path)), nib.load(str(label_path))
    assert image.shape == label.shape
    np.testing.assert_array_equal(image.affine, label.affine)
    for img in (image, label):
        assert img.header["sform_code"] > 0 and img.header["qform_code"] > 0
        np.testing.assert_allclose(img.get_qform(), img.get_sform(), atol=1e-4)
    error, mismatches = _on_truth_points(
        np.asarray(label.dataobj), label.affine, truth, truth_affine
    )
    assert error < 1e-4 and mismatches == 0


def _source_slices(folder):
    """(index (slice, row, column) -> LPS affine, SOP UID per slice, IPPs, first header),
    slices sorted along their normal; read with pydicom only."""
    slices = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(folder.glob("*.dcm"))]
    iop = np.array(slices[0].ImageOrientationPatient, float)
    normal = np.cross(iop[:3], iop[3:])
    slices.sort(key=lambda d: float(np.dot(normal, np.array(d.ImagePositionPatient, float))))
    ipp = np.array([d.ImagePositionPatient for d in slices], float)
    row_mm, col_mm = (float(v) for v in slices[0].PixelSpacing)
    affine = np.eye(4)  # index (k slice, j row, i column) -> LPS
    affine[:3, 0] = (ipp[-1] - ipp[0]) / (len(slices) - 1)
    affine[:3, 1] = iop[3:] * row_mm
    affine[:3, 2] = iop[:3] * col_mm
    affine[:3, 3] = ipp[0]
    np.testing.assert_allclose(np.diff(ipp, axis=0), affine[:3, 0][None].repeat(len(ipp) - 1, 0))
    return affine, [str(d.SOPInstanceUID) for d in slices], ipp, slices[0]


def _seg_overlays(seg_path, source_folder, truth, truth_affine, classes):
    seg = pydicom.dcmread(seg_path)
    lps_affine, uids, ipp, first = _source_slices(source_folder)
    assert [s.SegmentLabel for s in seg.SegmentSequence] == classes
    assert seg.FrameOfReferenceUID == first.FrameOfReferenceUID
    orientation = seg.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0]
    np.testing.assert_allclose(
        np.array(orientation.ImageOrientationPatient, float),
        np.array(first.ImageOrientationPatient, float),
        atol=1e-6,
    )
    frames = seg.pixel_array.reshape(-1, seg.Rows, seg.Columns)
    rebuilt = np.zeros((len(uids), seg.Rows, seg.Columns), np.uint8)
    for group, frame in zip(seg.PerFrameFunctionalGroupsSequence, frames, strict=True):
        number = int(group.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        uid = group.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        k = uids.index(str(uid))
        position = np.array(group.PlanePositionSequence[0].ImagePositionPatient, float)
        np.testing.assert_allclose(position, ipp[k], atol=1e-4)
        assert not rebuilt[k][frame > 0].any(), "segments overlap"
        rebuilt[k][frame > 0] = number
    lps_to_ras = np.diag([-1.0, -1.0, 1.0, 1.0])
    error, mismatches = _on_truth_points(rebuilt, lps_to_ras @ lps_affine, truth, truth_affine)
    assert error < 1e-3 and mismatches == 0


@pytest.mark.parametrize("source", ["dicom", "nifti"])
@pytest.mark.parametrize("geometry", list(GEOMETRIES))
def test_every_format_overlays_awkward_geometries(make_organ_project, tmp_path, geometry, source):
    folder, truth, affine = make_organ_project(
        tmp_path / "proj", tmp_path / "ct", GEOMETRIES[geometry], source=source
    )
    with Project(folder) as project:
        classes = list(project.classes)
        roots = {
            f: export_project(project, f, tmp_path / f).root
            for f in ("abdomenatlas", "nnunet", "monai", "dicom-seg")
        }
    atlas = roots["abdomenatlas"] / "ct"
    _nifti_overlays(atlas / "ct.nii.gz", atlas / "combined_labels.nii.gz", truth, affine)
    for value, name in enumerate(classes, start=1):
        mask = nib.load(str(atlas / "segmentations" / f"{name}.nii.gz"))
        error, mismatches = _on_truth_points(
            np.asarray(mask.dataobj),
            mask.affine,
            (truth == value).astype(np.uint8),
            affine,
        )
        assert error < 1e-4 and mismatches == 0, name
    nn = roots["nnunet"]
    labels = json.loads((nn / "dataset.json").read_text())["labels"]
    assert labels == {"background": 0, **{c: i for i, c in enumerate(classes, start=1)}}
    _nifti_overlays(
        nn / "imagesTr" / "ct_0000.nii.gz", nn / "labelsTr" / "ct.nii.gz", truth, affine
    )
    datalist = json.loads((roots["monai"] / "datalist.json").read_text())
    (entry,) = datalist["training"] + datalist["validation"]
    _nifti_overlays(roots["monai"] / entry["image"], roots["monai"] / entry["label"], truth, affine)
    seg_case = roots["dicom-seg"] / "ct"
    source_folder = tmp_path / "ct" if source == "dicom" else seg_case / "image"
    _seg_overlays(seg_case / "segmentation.dcm", source_folder, truth, affine, classes)
