"""``atlas-annotate phantoms``: write deterministic CT / lumbar MRI phantoms with truth."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..cli import non_negative_int

#: How each ``--format`` is named in what the command prints.
FORMAT_NAMES = {"dicom": "DICOM", "nifti": "NIfTI"}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument(
        "--ct", type=non_negative_int, default=2, metavar="N", help="CT organ cases (2)"
    )
    parser.add_argument(
        "--mri", type=non_negative_int, default=1, metavar="N", help="lumbar MRI studies (1)"
    )
    parser.add_argument("--seed", type=int, default=0, help="set seed (0)")
    parser.add_argument(
        "--format",
        choices=("dicom", "nifti"),
        default="dicom",
        help="CT image format (labels are always NIfTI; MRI is always DICOM)",
    )
    parser.add_argument("--site", type=int, default=0, help="acquisition site, 0 = training")
    parser.add_argument(
        "--ct-shape",
        type=int,
        nargs=3,
        metavar=("Z", "Y", "X"),
        default=None,
        help="CT array size (default 96 160 160; up to about 300 512 512)",
    )
    parser.add_argument(
        "--axial-stacks",
        action="store_true",
        help="write each MRI study's Axial T2 as five stacks, one angled through each disc "
        "(one series, as many lumbar protocols acquire it) instead of one block",
    )


def run(args: argparse.Namespace) -> int:
    from ..phantoms import write_phantoms
    from ..project import ProjectError
    from ..spine_grades import LEVELS

    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        # projects reference these images in place: writing a new set over an old one
        # would change (or mix series into) the images their labels were drawn on
        raise ProjectError(
            f"{args.out} already exists and is not empty; projects may reference its images. "
            "Choose a new --out folder."
        )

    manifest = write_phantoms(
        args.out,
        n_ct=args.ct,
        n_mri=args.mri,
        seed=args.seed,
        fmt=args.format,
        site=args.site,
        ct_shape=tuple(args.ct_shape) if args.ct_shape else None,
        axial_stacks=LEVELS if args.axial_stacks else (),
    )
    cases = json.loads(manifest.read_text())["cases"]
    n_org = sum(c["task"] == "organs" for c in cases)
    n_sp = len(cases) - n_org
    print(
        f"wrote {n_org} CT organ case(s) ({FORMAT_NAMES[args.format]}) and {n_sp} lumbar MRI "
        f"study(ies) (DICOM), seed {args.seed}, site {args.site}, to {args.out}"
    )
    for c in cases:
        extra = c.get("phase") or f"study_id {c.get('study_id')}"
        print(f"  {c['task']:<6} {c['id']:<14} {extra:<15} {c['images'][0]['path']}")
    print(f"manifest: {manifest}")
    return 0
