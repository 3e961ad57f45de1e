"""DICOM Segmentation objects among the DICOM files given to ``atlas-annotate add``, paired
with the image series they were drawn on.

A DICOM SEG (Modality ``SEG``, SOP class Segmentation Storage
``1.2.840.10008.5.1.4.1.1.66.4``) names the series it segments in its
ReferencedSeriesSequence (SeriesInstanceUID) and the slices it was drawn on in its
SourceImageSequence, top level or per frame under DerivationImageSequence
(SOPInstanceUID). A PACS export, an ``export --format dicom-seg`` folder or a TCIA
collection keeps the SEG beside its CT series, so the SEG of a series is that case's
labels: ``add --labels NAME`` imports it as NAME's version through the same DICOM SEG
import as ``atlas-annotate import`` (:func:`~.importing.read_segmentation`, highdicom).

A SEG of a series that is not among the images added, one that names no source series,
a second SEG of the same series, and any SEG in a spine project (which imports grades, not
masks) are left out, each with the reason and what to do. Reads the headers the DICOM scan
already read; no pixel data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from ..io.dicom_scan import SeriesInfo

#: SOP class UID of DICOM Segmentation Storage.
SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"


def is_segmentation(info: SeriesInfo) -> bool:
    """True for a series of DICOM SEG objects (by Modality or SOP class)."""
    return info.modality.upper() == "SEG" or info.sop_class_uid == SEGMENTATION_STORAGE


def _source_instances(header: Dataset) -> Iterable[str]:
    """SOPInstanceUIDs of the slices a SEG names as its sources, wherever it names them."""
    groups = [header]
    for name in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        groups += list(header.get(name, []))
    for group in groups:
        items = list(group.get("SourceImageSequence", []))
        for derivation in group.get("DerivationImageSequence", []):
            items += list(derivation.get("SourceImageSequence", []))
        for item in items:
            if "ReferencedSOPInstanceUID" in item:
                yield str(item.ReferencedSOPInstanceUID)


def referenced_series(header: Dataset, series_of_slice: dict[str, str]) -> set[str]:
    """SeriesInstanceUIDs a SEG header references: those of its ReferencedSeriesSequence,
    and the series of its source slices found in ``series_of_slice`` (SOPInstanceUID ->
    SeriesInstanceUID of the scanned images)."""
    uids = {
        str(item.SeriesInstanceUID)
        for item in header.get("ReferencedSeriesSequence", [])
        if "SeriesInstanceUID" in item
    }
    uids |= {series_of_slice[s] for s in _source_instances(header) if s in series_of_slice}
    return uids


@dataclass
class PairedSegmentations:
    """What :func:`pair_segmentations` found.

    Attributes
    ----------
    labels
        ``{image SeriesInstanceUID: SEG file}``: the SEG imported as that series' labels.
    left_out
        ``(SEG file, why)`` for every other SEG file.
    """

    labels: dict[str, Path] = field(default_factory=dict)
    left_out: list[tuple[str, str]] = field(default_factory=list)


def _named(info: SeriesInfo) -> str:
    number = "" if info.series_number is None else f"{info.series_number} "
    return f"series {number}{info.description or '(no description)'!r}"


def pair_segmentations(
    images: list[SeriesInfo], segmentations: list[SeriesInfo], task: str
) -> PairedSegmentations:
    """Pair each DICOM SEG file with the image series it references.

    Parameters
    ----------
    images
        The image series being added.
    segmentations
        The SEG series found with them (:func:`is_segmentation`); each file is one SEG.
    task
        The project's task: a spine project imports grades, so its SEGs are left out.
    """
    found = PairedSegmentations()
    by_uid = {info.series_uid: info for info in images}
    series_of_slice = {
        str(header.get("SOPInstanceUID", "")): info.series_uid
        for info in images
        for header in info.headers
    }
    for seg in segmentations:
        for path, header in zip(seg.files, seg.headers, strict=False):
            where = str(path)
            if task == "spine":
                found.left_out.append(
                    (
                        where,
                        "a DICOM SEG; spine projects import grades (an RSNA train.csv with "
                        "'atlas-annotate import'), not masks.",
                    )
                )
                continue
            uids = referenced_series(header, series_of_slice)
            ours = sorted(uid for uid in uids if uid in by_uid)
            if not uids:
                why = (
                    "a DICOM SEG naming no source series (no ReferencedSeriesSequence or "
                    "SourceImageSequence), so no case can be chosen for it. Import it with "
                    "'atlas-annotate import PROJECT FILE --case ID --annotator NAME'."
                )
            elif not ours:
                why = (
                    f"a DICOM SEG of series {', '.join(sorted(uids))}, which is not among the "
                    "images added here. Add it with the folder of that series, or import it "
                    "into the case made from that series ('atlas-annotate import PROJECT FILE "
                    "--case ID --annotator NAME')."
                )
            else:
                taken = [uid for uid in ours if uid in found.labels]
                for uid in ours:
                    found.labels.setdefault(uid, path)
                if not taken or len(taken) < len(ours):
                    continue
                first = found.labels[taken[0]]
                why = (
                    f"a second DICOM SEG of {_named(by_uid[taken[0]])}; {first} is imported "
                    "as its labels. Import this one as another annotator's with "
                    "'atlas-annotate import PROJECT FILE --case ID --annotator NAME'."
                )
            found.left_out.append((where, why))
    return found
