"""``atlas-annotate campaign --cases N --rounds R [--seed S] [--site K] [--json] [--out DIR]``.

Simulates a whole campaign on phantoms of a site the starter model never saw: propose,
correct through the edit log, retrain, repeat; prints held-out Dice and edits per round.
"""

from __future__ import annotations

import json
import math
import sys

from ..cli import non_negative_int, positive_int


def configure(parser) -> None:
    parser.add_argument(
        "--cases", type=positive_int, default=6, help="new cases annotated per round (default 6)"
    )
    parser.add_argument("--rounds", type=positive_int, default=3, help="(default 3)")
    parser.add_argument("--seed", type=int, default=0, help="(default 0)")
    parser.add_argument(
        "--site", type=int, default=1, help="acquisition site (starter: 0; default 1)"
    )
    parser.add_argument(
        "--shape",
        type=int,
        nargs=3,
        default=(96, 160, 160),
        metavar="N",
        help="phantom CT size z y x (default 96 160 160; the README's campaign numbers and "
        "tests/test_campaign.py use 64 112 112)",
    )
    parser.add_argument(
        "--eval-cases", type=positive_int, default=4, help="held-out phantoms (default 4)"
    )
    parser.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help="training epochs per round (default 20)",  # CampaignSettings.epochs
    )
    parser.add_argument(
        "--boundary-tolerance",
        type=non_negative_int,
        default=0,
        help="the simulated annotator leaves wrong voxels within this many voxels of a true "
        "organ boundary (0: corrects every voxel)",
    )
    parser.add_argument(
        "--pool",
        type=non_negative_int,
        default=0,
        help="a dataset of N cases added first; each round the model proposes the cases not "
        "yet reviewed and the annotator reviews --cases of them (default 0: new cases each "
        "round)",
    )
    parser.add_argument(
        "--order",
        choices=["queue", "added"],
        default="queue",
        help="with --pool, which cases are reviewed: the queue's most uncertain proposals "
        "first, or in the order added (no prioritisation)",
    )
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=positive_int, default=None)
    parser.add_argument(
        "--out",
        default=None,
        help="folder for the phantoms and the project (default: a new atlas-campaign-* "
        "folder in the system's temporary folder, kept afterwards; the report names it)",
    )
    parser.add_argument("--no-spine", action="store_true", help="skip the lumbar grading track")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args) -> int:
    from ..campaign import CampaignSettings, run_campaign

    settings = CampaignSettings(
        cases=args.cases,
        rounds=args.rounds,
        seed=args.seed,
        site=args.site,
        shape=tuple(args.shape),
        eval_cases=args.eval_cases,
        device=args.device,
        threads=args.threads,
        spine=not args.no_spine,
        boundary_tolerance=args.boundary_tolerance,
        pool=args.pool,
        order=args.order,
    )
    if args.epochs is not None:
        settings.epochs = args.epochs
    report = run_campaign(settings, args.out, log=lambda m: print(m, file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps(_strict(report), indent=2, allow_nan=False))
        return 0
    print(f"project: {report['project']}")
    for r in report["rounds"]:
        rsna = "n/a" if r["rsna_score"] is None else f"{r['rsna_score']:.3f}"
        print(
            f"round {r['round']}: model {r['model_version']:<16} held-out Dice "
            f"{r['mean_dice']:.3f}  voxels edited/case {r['voxels_edited_per_case']:.0f}  "
            f"RSNA {rsna}  propose {r['propose_seconds']:.0f} s  train {r['train_seconds']:.0f} s"
        )
        if "dataset_wrong_voxels_per_case" in r:
            print(
                f"  pool: {r['pool_cases_reviewed']} reviewed; wrong voxels left per case "
                f"{r['dataset_wrong_voxels_per_case']:.0f} "
                f"({r['dataset_wrong_off_boundary_per_case']:.0f} off the border band)"
            )
    f = report["final"]
    print(f"final: model {f['model_version']} held-out Dice {f['mean_dice']:.3f}")
    return 0


def _strict(value):
    """``value`` with NaN and infinite floats as None, so the JSON is valid for any parser
    (a score that was not measured, e.g. no organ in a held-out case)."""
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
