"""Write a Volume as a classic single-frame DICOM series (CT or MR Image Storage).

Used by the phantom generator and the geometry tests: the exact inverse of the reader's
convention, so ``load_volume(write_dicom_series(v, d))`` reproduces ``v``'s array and
affine. Pixel data is stored as signed 16-bit with RescaleSlope/Intercept chosen to
keep the values exact for integer input.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)

from ..volume import LPS_TO_RAS, Volume

_SOP_CLASS = {"CT": CTImageStorage, "MR": MRImageStorage}


def _whole_numbers_as_int16(data: np.ndarray) -> np.ndarray:
    """Float data of whole numbers in int16 range (a CT saved as float32) as int16, so it
    is stored with RescaleSlope 1 and reads back exactly; other data as it is (floats are
    stored rescaled, within half a step)."""
    if not np.issubdtype(data.dtype, np.floating) or not data.size:
        return data
    if not np.isfinite(data).all() or data.min() < -32768 or data.max() > 32767:
        return data
    as_int = data.astype(np.int16)
    return as_int if np.array_equal(as_int, data) else data


def decimal_string(value: float) -> str:
    """A DS string of at most 16 characters that keeps as much precision as fits."""
    for digits in range(12, 3, -1):
        text = f"{value:.{digits}g}"
        if len(text) <= 16:
            return text
    raise ValueError(f"cannot encode {value} as DICOM DS")


def write_dicom_series(
    volume: Volume,
    folder: str | Path,
    *,
    modality: str | None = None,
    series_description: str = "",
    series_number: int = 1,
    patient_name: str = "Anonymous",
    patient_id: str = "ANON",
    study_uid: str | None = None,
    series_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    uid_seed: str | None = None,
    file_prefix: str = "IM",
    extra: dict | None = None,
    first_instance: int = 1,
) -> list[Path]:
    """Write one file per z slice into ``folder`` and return the paths in z order.

    Parameters
    ----------
    volume
        Image to write; its affine fixes ImagePositionPatient / ImageOrientationPatient
        / PixelSpacing / SliceThickness of every slice.
    uid_seed
        When given, all UIDs are derived from it (deterministic output for a seed).
    extra
        Additional top-level attributes (keyword -> value) written into every slice.
    first_instance
        InstanceNumber of the first slice (and the number in its file name): a series
        written as several stacks numbers them on from the stack before.
    """
    modality = (modality or volume.modality or "CT").upper()
    if modality not in _SOP_CLASS:
        raise ValueError(f"modality must be CT or MR, not {modality!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def uid(tag: str) -> str:
        return generate_uid(entropy_srcs=[uid_seed, tag]) if uid_seed else generate_uid()

    study_uid = study_uid or uid("study")
    series_uid = series_uid or uid(f"series-{series_number}-{series_description}")
    frame_uid = frame_of_reference_uid or uid("frame")

    lps = LPS_TO_RAS @ volume.affine  # (z, y, x) -> LPS
    spacing = volume.spacing
    dirs = lps[:3, :3] / np.asarray(spacing)[None, :]
    row_cos, col_cos = dirs[:, 2], dirs[:, 1]  # along a row = x; down the rows = y
    normal = np.cross(row_cos, col_cos)
    if np.dot(normal, dirs[:, 0]) < 1 - 1e-6:
        # DICOM readers order slices along row x col; write slices in that order so the
        # file set is valid whatever the handedness of the volume's z axis.
        raise ValueError(
            "volume z axis must point along row_cosine x column_cosine (right-handed grid);"
            " flip the array along z and adjust the affine first"
        )

    data = _whole_numbers_as_int16(np.asarray(volume.array))
    if np.issubdtype(data.dtype, np.floating) and not np.isfinite(data).all():
        # the rescale below would be NaN and every stored pixel 0: refuse instead
        raise ValueError(
            "volume has voxels that are not numbers (NaN or infinite); DICOM stores integers. "
            "Set them to a value first (air for a CT)."
        )
    if np.issubdtype(data.dtype, np.floating):
        lo, hi = float(data.min()), float(data.max())
        slope = max((hi - lo) / 65000.0, 1e-6) if hi > lo else 1.0
        intercept = lo + 32768 * slope if hi > lo else lo
        stored = np.round((data - intercept) / slope).clip(-32768, 32767).astype(np.int16)
    else:
        lo, hi = int(data.min()), int(data.max())
        if lo < -32768 or hi > 32767:
            raise ValueError(f"integer range {lo}..{hi} does not fit int16")
        slope, intercept = 1.0, 0.0
        stored = data.astype(np.int16)

    now = _dt.datetime(2026, 1, 1, 12, 0, 0) if uid_seed else _dt.datetime.now()
    paths = []
    for k in range(volume.shape[0]):
        number = first_instance + k
        sop_uid = uid(f"sop-{series_uid}-{number - 1}")
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = _SOP_CLASS[modality]
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        path = folder / f"{file_prefix}{number:05d}.dcm"
        ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID = _SOP_CLASS[modality]
        ds.SOPInstanceUID = sop_uid
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_uid
        ds.Modality = modality
        ds.PatientName = patient_name
        ds.PatientID = patient_id
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = now.strftime("%Y%m%d")
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = now.strftime("%H%M%S")
        ds.StudyID = "1"
        ds.AccessionNumber = ""
        ds.ReferringPhysicianName = ""
        ds.PatientBirthDate = ""
        ds.PatientSex = "O"
        ds.Manufacturer = "napari-atlas-annotate"
        ds.SeriesNumber = series_number
        ds.InstanceNumber = number
        ds.SeriesDescription = series_description
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL" if abs(normal[2]) > 0.9 else "OTHER"]
        pos = lps[:3, :3] @ np.array([k, 0, 0]) + lps[:3, 3]
        ds.ImagePositionPatient = [decimal_string(float(v)) for v in pos]
        ds.ImageOrientationPatient = [decimal_string(float(v)) for v in (*row_cos, *col_cos)]
        # row spacing, column spacing
        ds.PixelSpacing = [decimal_string(spacing[1]), decimal_string(spacing[2])]
        ds.SliceThickness = decimal_string(spacing[0])
        ds.SliceLocation = decimal_string(float(np.dot(pos, normal)))
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = int(volume.shape[1]), int(volume.shape[2])
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleSlope = decimal_string(slope)
        ds.RescaleIntercept = decimal_string(intercept)
        if modality == "CT":
            ds.RescaleType = "HU"
            ds.KVP = "120"
        for keyword, value in (extra or {}).items():
            setattr(ds, keyword, value)
        ds.PixelData = np.ascontiguousarray(stored[k]).tobytes()
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
