"""``atlas-annotate models PROJECT [--list] [--rollback VERSION] [--json]``."""

from __future__ import annotations

import json
import time

from ..project import Project


def configure(parser) -> None:
    parser.add_argument("project", help="project folder")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--list", action="store_true", help="list model versions (default)")
    group.add_argument("--rollback", metavar="VERSION", help="make VERSION the active model")
    group.add_argument("--register", metavar="FOLDER", help="register a model folder")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args) -> int:
    from ..models.registry import list_models, register_model, rollback

    with Project(args.project) as project:
        if args.rollback:
            record = rollback(project, args.rollback)
            print(f"active {record.task} model is now {record.version}")
            return 0
        if args.register:
            record = register_model(project, args.register)
            print(f"registered {record.version} (not active; use --rollback to activate)")
            return 0
        records = list_models(project)
    if args.json:
        print(json.dumps([vars(r) for r in records], indent=2))
        return 0
    if not records:
        print("no models yet: 'atlas-annotate propose' installs the starter model.")
    for r in records:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created_at))
        print(
            f"{'*' if r.active else ' '} {r.version:<20} task={r.task} round={r.round} "
            f"{when}{_scores(r.metrics)}"
        )
    return 0


def _scores(metrics: dict) -> str:
    """Held-out scores a round recorded, with the previous model's beside them."""
    from ..rounds import held_out_dice_name

    parts = []
    dice = held_out_dice_name(metrics.get("label_tolerance") or 0)
    for key, previous, label, fmt in (
        ("mean_dice", "previous_mean_dice", dice, ".3f"),
        ("voxels_to_edit_per_case", "previous_voxels_to_edit_per_case", "voxels to edit", ".0f"),
        ("rsna_score_new", "rsna_score_old", "RSNA score", ".3f"),  # spine graders
    ):
        value, before = metrics.get(key), metrics.get(previous)
        if isinstance(value, (int, float)):
            was = f" (previous {before:{fmt}})" if isinstance(before, (int, float)) else ""
            parts.append(f"{label} {value:{fmt}}{was}")
    status = metrics.get("status")
    text = f" held-out {', '.join(parts)}" if parts else ""
    return text + (f"; {status}" if status else "")
