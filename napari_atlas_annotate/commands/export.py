"""``atlas-annotate export PROJECT --format F --out DIR``: labels -> a dataset folder.

Formats: abdomenatlas, nnunet, dicom-seg, monai, slicer (organ projects), rsna and
rsna-submission (spine projects). rsna-submission writes the grader's latest proposal of each
case as Kaggle's ``submission.csv`` (``row_id,normal_mild,moderate,severe``, 25 rows a
study) with ``submission_models.csv`` naming the grader version per study; a case without a
proposal is skipped and listed with the ``atlas-annotate propose`` command that makes one.
``--status final`` exports each case's latest final version; ``--status corrected`` the
latest final, else the newest corrected or imported one (``atlas-annotate import``);
``--status any`` as corrected, else the model's latest proposal (counted as unreviewed in
the summary and marked in ``provenance.json``). Other
cases are skipped and listed; when no case qualifies nothing is written and the error says
what the project has and how to export or finalize it.

``--with-notes`` adds the readers' notes of the exported cases as ``notes.csv`` (free text,
so only when asked). A ``provenance.json`` is written beside the files; patient identifiers
are left out unless ``--keep-identifiers``. A case whose id contains a source identifier (a
PatientID or accession number used as the case id) is exported as ``case-<9 digits>``, the
same name in every export; the map back is printed and kept in the project's audit trail
(``export`` records with ``exported_as``, by ``--by``), never written into the export. An
existing non-empty target is refused unless ``--overwrite`` and it is an earlier export (it has a
``provenance.json``); a target that is, holds or lies inside
the project or a source image is always refused, and so is a second nnU-Net dataset with an
id already used in the ``--out`` folder.

Examples
--------
.. code-block:: console

    $ atlas-annotate export proj --format nnunet --out nnUNet_raw --dataset-id 501 \\
        --dataset-name Abdomen --status corrected
    $ atlas-annotate export lumbar --format rsna-submission --out round2-sub
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the command's arguments to ``parser``."""
    from ..export import FORMATS, STATUSES

    parser.add_argument("project", type=Path, help="project folder")
    parser.add_argument(
        "--format", dest="fmt", required=True, choices=list(FORMATS), help="dataset layout to write"
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="target folder (nnunet: the nnUNet_raw folder that receives DatasetNNN_Name)",
    )
    parser.add_argument(
        "--status",
        choices=STATUSES,
        default="final",
        help="final: latest final version per case; corrected: latest final, else the "
        "newest corrected or imported version; any: as corrected, else the model's latest "
        "proposal, marked unreviewed in provenance.json (default: final; rsna-submission "
        "always takes each case's latest grader proposal)",
    )
    parser.add_argument(
        "--keep-identifiers",
        action="store_true",
        help="keep source patient identifiers, case ids that contain one included "
        "(default: such case ids are exported as case-<9 digits>, the map printed and kept "
        "in the project's audit trail)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier export in the target folder (a folder with its provenance.json; "
        "never any other folder, the project or its images)",
    )
    parser.add_argument("--dataset-id", type=int, default=501, help="nnU-Net dataset number")
    parser.add_argument(
        "--dataset-name", default=None, help="nnU-Net dataset name (default: the project's name)"
    )
    parser.add_argument(
        "--validation-fraction",
        type=_fraction,
        default=0.2,
        help="monai: share of cases in the validation list (default 0.2)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="writer threads (default: CPU cores, at most 8)"
    )
    parser.add_argument(
        "--no-verify",
        action="store_true",
        help="skip reading exported labels back to check their geometry",
    )
    parser.add_argument(
        "--with-notes",
        action="store_true",
        help="also write the readers' notes of the exported cases as notes.csv (free text: "
        "a note holding a source patient identifier stops the export)",
    )
    parser.add_argument(
        "--by",
        metavar="NAME",
        default=None,
        help="who exports, recorded in the project's audit trail (default: your login name)",
    )


def _fraction(text: str) -> float:
    """argparse type: a share in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a share of cases in [0, 1), e.g. 0.2 (0: no validation list)"
        )
    return value


def run(args: argparse.Namespace) -> int:
    from ..project import Project

    def progress(done: int, total: int, case_id: str) -> None:
        print(f"[{done}/{total}] {case_id}", file=sys.stderr)

    with Project(args.project) as project:
        try:
            result = _export(project, args, progress)
        except KeyboardInterrupt:
            print(
                "atlas-annotate export: interrupted; nothing was written (an earlier export "
                "in --out is unchanged). Run the same command again to export.",
                file=sys.stderr,
            )
            return 130
    print(result.summary())
    return 0


def _export(project, args: argparse.Namespace, progress):
    from ..export import export_project

    return export_project(
        project,
        args.fmt,
        args.out,
        status=args.status,
        progress=progress,
        keep_identifiers=args.keep_identifiers,
        overwrite=args.overwrite,
        dataset_id=args.dataset_id,
        dataset_name=args.dataset_name,
        validation_fraction=args.validation_fraction,
        threads=args.threads,
        verify=not args.no_verify,
        actor=args.by,
        with_notes=args.with_notes,
    )
