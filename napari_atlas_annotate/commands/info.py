"""``atlas-annotate info PATH [--series S] [--json]``: what is in a DICOM or NIfTI path.

Lists the DICOM series found (UID, description, number, modality, images), then for the
selected or only image series its shape, spacing, orientation codes, modality and affine.
For a folder with several image series and no ``--series``, every image series is
described (from headers only, no pixels decoded), and the top-level ``shape`` / ``spacing``
/ ``affine`` / ``modality`` of the JSON output are those of the first one.

Examples
--------
.. code-block:: console

    $ atlas-annotate info study/ --series "Sagittal T1" --json
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

from ..io.errors import VolumeLoadError

_GEOMETRY_KEYS = ("shape", "spacing", "orientation", "oblique", "modality", "dtype", "affine")


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the command's arguments to ``parser``."""
    parser.add_argument("path", type=Path, help="DICOM file or folder, or .nii/.nii.gz file")
    parser.add_argument(
        "--series",
        default=None,
        help="series to describe: SeriesInstanceUID, SeriesDescription or series number",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _describe_dicom(path: Path, series: str | None) -> dict[str, Any]:
    from ..io.dicom import plan_series, scan_dicom, select_series

    found = scan_dicom(path)
    report: dict[str, Any] = {"format": "dicom", "series": [s.to_dict() for s in found]}
    images = [s for s in found if s.is_image]
    if series is not None or len(images) <= 1:
        chosen = select_series(found, path, series)  # raises for non-image-only folders
        report["selected"] = chosen.series_uid
        report["volumes"] = [plan_series(chosen, path).grid().describe()]
        return report
    report["selected"] = None
    volumes = []
    for info in images:
        try:
            volumes.append(plan_series(info, path).grid().describe())
        except VolumeLoadError as exc:  # one bad series should not hide the others
            volumes.append(
                {
                    "series_uid": info.series_uid,
                    "series_description": info.description,
                    "error": str(exc),
                }
            )
    report["volumes"] = volumes
    return report


def describe_path(path: str | Path, series: str | None = None) -> dict[str, Any]:
    """JSON-ready report of ``path`` (what ``info --json`` prints).

    Returns
    -------
    dict
        ``path``, ``format`` (``"dicom"`` or ``"nifti"``), ``series`` (list of dicts, empty
        for NIfTI), ``selected`` (UID or None), ``volumes`` (one
        :meth:`Volume.describe` dict per described series, or ``{..., "error": ...}``),
        and the top-level ``shape``, ``spacing``, ``orientation``,
        ``oblique``, ``modality``, ``dtype`` and ``affine`` of the first described volume.

    Raises
    ------
    VolumeLoadError
        When ``path`` cannot be read, or the selected (or only) series cannot be loaded.
    """
    from ..io.nifti import is_nifti_path, load_nifti

    path = Path(path)
    if not path.exists():
        raise VolumeLoadError(path, "does not exist.", "Check the path and try again.")
    if path.is_file() and is_nifti_path(path):
        if series is not None:
            raise VolumeLoadError(
                path, "is a NIfTI file; --series applies to DICOM only.", "Drop --series."
            )
        report = {
            "format": "nifti",
            "series": [],
            "selected": None,
            "volumes": [load_nifti(path).describe()],
        }
    else:
        report = _describe_dicom(path, series)
    report = {"path": str(path), **report}
    first = next((v for v in report["volumes"] if "error" not in v), {})
    for key in _GEOMETRY_KEYS:
        report[key] = first.get(key)
    return report


def _volume_text(volume: dict[str, Any]) -> list[str]:
    desc = volume.get("series_description") or ""
    uid = volume.get("series_uid")
    title = f"Series {desc!r} (uid {uid})" if uid else str(volume.get("source", ""))
    if "error" in volume:
        return [f"{title}: cannot be loaded:", f"  {volume['error']}"]
    lines = [
        title,
        "  shape (z, y, x)   " + " x ".join(str(s) for s in volume["shape"]),
        "  spacing (mm)      " + " x ".join(f"{s:g}" for s in volume["spacing"]),
        f"  orientation       {volume['orientation']} (where the z, y, x axes point; "
        f"oblique: {'yes' if volume['oblique'] else 'no'})",
        f"  modality          {volume['modality'] or '(unknown)'}",
        f"  dtype             {volume['dtype']}",
        "  affine (z, y, x) -> RAS mm",
    ]
    lines += ["    [" + " ".join(f"{v:10.4f}" for v in row) + " ]" for row in volume["affine"]]
    return lines


def format_text(report: dict[str, Any]) -> str:
    """The human-readable form of :func:`describe_path`'s report."""
    lines = []
    if report["format"] == "nifti":
        lines.append(f"{report['path']}: NIfTI volume")
    else:
        lines.append(f"{report['path']}: {len(report['series'])} DICOM series")
        rows = [
            (
                "-" if s["series_number"] is None else str(s["series_number"]),
                s["modality"] or "?",
                str(s["n_frames"]) if s["is_image"] else "-",
                s["description"] or ("(" + s["kind"] + ")" if not s["is_image"] else ""),
                s["series_uid"],
            )
            for s in report["series"]
        ]
        # columns as wide as their longest entry (RSNA series numbers have 9-10 digits)
        header = ("number", "modality", "images", "description", "uid")
        widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
        widths[3] = max(widths[3], 24)
        for number, modality, images, desc, uid in [header, *rows]:
            lines.append(
                f"  {number:>{widths[0]}}  {modality:<{widths[1]}}  {images:>{widths[2]}}  "
                f"{desc:<{widths[3]}}  {uid}"
            )
        if report["selected"] is None and len(report["volumes"]) > 1:
            lines.append("No --series given: describing every image series.")
    for volume in report["volumes"]:
        lines.append("")
        lines.extend(_volume_text(volume))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the report; 0 on success (errors propagate to the CLI, which exits 2).

    Loader warnings go to stderr, also when an error follows (they often explain it), and
    into the JSON report as ``warnings``.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            report = describe_path(args.path, args.series)
        finally:
            messages = list(dict.fromkeys(str(w.message) for w in caught))
            for message in messages:
                print(f"atlas-annotate info: warning: {message}", file=sys.stderr)
    report["warnings"] = messages
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_text(report))
    return 0
