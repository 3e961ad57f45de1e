"""Deterministic synthetic data with truth: abdominal CT organs and lumbar MRI grades.

* :func:`make_ct_phantom` -- an abdominal CT (int16 HU) and its AbdomenAtlas 1.0 label map
  (:data:`CLASSES`), arterial or portal venous, with per-case anatomy and acquisition.
* :func:`make_spine_phantom` -- an RSNA-style lumbar MRI study (Sagittal T1, Sagittal
  T2/STIR, Axial T2 in one patient frame) with 25 grades and their level points.
* :func:`write_phantoms` -- a set of both on disk (DICOM/NIfTI + CSVs) with a manifest.

``site`` selects an acquisition profile (0 = training site) so other hospitals' data can be
imitated: spacing, noise, contrast phase mix, body habitus, intensity calibration.
Everything is seeded: the same arguments give byte-identical arrays on one machine.
"""

from .ct import CLASSES, CTSite, ct_site, make_ct_phantom
from .spine import MRSite, SpineCase, make_spine_phantom, mr_site, sample_grades
from .writer import case_seed, write_phantoms

__all__ = [
    "CLASSES",
    "CTSite",
    "MRSite",
    "SpineCase",
    "case_seed",
    "ct_site",
    "make_ct_phantom",
    "make_spine_phantom",
    "mr_site",
    "sample_grades",
    "write_phantoms",
]
