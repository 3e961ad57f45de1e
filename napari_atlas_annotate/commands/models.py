"""``atlas-annotate models PROJECT [--list] [--rollback VERSION|ROUND] [--register PATH
[--version NAME]] [--json]``.

The listing stars the active model; each trained model's held-out scores and the verdict of
its round (promoted or not), and how a model became active when that was not the round's
verdict (a rollback). ``--register`` adds a model folder (``configs/metadata.json`` +
``models/model.pt``) or, for organ projects, a weights file (a state dict of the active
model's network, saved with ``torch.save(model.state_dict(), path)``); either is checked
(classes, architecture, readable weights) before it is listed, and is not made active.
"""

from __future__ import annotations

import json
import time

from ..project import Project


def configure(parser) -> None:
    parser.add_argument("project", help="project folder")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--list", action="store_true", help="list model versions (default)")
    group.add_argument(
        "--rollback",
        metavar="VERSION",
        help="make VERSION the active model: a version name, or the round number that "
        "trained it (0: the starter)",
    )
    group.add_argument(
        "--register",
        metavar="PATH",
        help="register a model folder, or (organ projects) a weights file: a state dict of "
        "the active model's network saved with torch.save(model.state_dict(), PATH); it is "
        "checked against the project's classes and the architecture, and not made active",
    )
    parser.add_argument(
        "--version",
        dest="model_version",
        metavar="NAME",
        help="version name of a registered model: a weights file's default is "
        "<task>-import-<file name>, a folder's the version its metadata gives (a round name "
        "such as organs-round3 is refused: the project's own rounds are named so)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args) -> int:
    from pathlib import Path

    from ..models.registry import import_checkpoint, import_model_folder, list_models, rollback
    from ..project import ProjectError

    register = Path(args.register) if args.register else None
    if args.model_version and register is None:
        raise ProjectError("--version names a model given with --register PATH.")
    if args.rollback is not None and not args.rollback.strip():
        raise ProjectError(
            "--rollback: no version given; name a model version or a round number (0: the "
            f"starter). List them with 'atlas-annotate models {args.project}'."
        )
    with Project(args.project) as project:
        if args.rollback is not None:
            record = rollback(project, version_named(project, args.rollback))
            if args.json:
                print(json.dumps({"active": _with_metadata(project, record)}, indent=2))
                return 0
            where = "registered, no round" if record.round is None else f"round {record.round}"
            print(f"active {record.task} model is now {record.version} ({where})")
            return 0
        if register is not None:
            path = register
            if not path.exists():
                raise ProjectError(
                    f"{path}: no such file or folder. Give a model folder (configs/"
                    "metadata.json + models/model.pt) or a weights file (torch.save("
                    "model.state_dict(), path))."
                )
            if path.is_file():
                record = import_checkpoint(project, path, version=args.model_version)
            else:
                record = import_model_folder(project, path, version=args.model_version)
            if args.json:
                print(json.dumps({"registered": _with_metadata(project, record)}, indent=2))
                return 0
            print(
                f"registered {record.version} from {path} (not active; activate it with "
                f"'atlas-annotate models {args.project} --rollback {record.version}')"
            )
            return 0
        records = list_models(project)
        described = [_with_metadata(project, r) for r in records] if args.json else []
    if args.json:
        print(json.dumps(described, indent=2))
        return 0
    if not records:
        print("no models yet: 'atlas-annotate propose' installs the starter model.")
    else:
        print("model versions (* = active):")
    for r in records:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created_at))
        print(
            f"{'*' if r.active else ' '} {r.version:<20} task={r.task} "
            f"round={'-' if r.round is None else r.round} "
            f"{when}{_scores(r.metrics)}{_verdict(r)}"
        )
    return 0


def _with_metadata(project, record) -> dict:
    """A registry record with its folder and its ``configs/metadata.json`` (classes,
    spacing, preprocessing, architecture, training cases, label snapshot, metrics)."""
    folder = project.resolve(record.path)
    try:
        metadata = json.loads((folder / "configs" / "metadata.json").read_text())
    except (OSError, ValueError) as exc:
        metadata = {"error": f"unreadable: {exc}"}
    return {**vars(record), "folder": str(folder), "metadata": metadata}


def version_named(project, value: str) -> str:
    """The model version ``value`` names: a version, else a round number (``0``, ``2``)."""
    from ..models.registry import list_models
    from ..project import ProjectError

    records = list_models(project)
    if not value.strip().isdigit() or any(r.version == value for r in records):
        return value
    number = int(value)
    matches = [r.version for r in records if r.round == number]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ProjectError(
            f"round {number} has several models ({', '.join(matches)}); name the version."
        )
    rounds = ", ".join(f"{r.round}={r.version}" for r in records if r.round is not None)
    raise ProjectError(
        f"no model from round {number} in project {project.folder} (rounds: "
        f"{rounds or 'none yet'}). List them with 'atlas-annotate models PROJECT --list'."
    )


def _verdict(record) -> str:
    """What the round that trained ``record`` decided, and whether that still holds."""
    status = str(record.metrics.get("status") or "")
    if not status:
        return ""
    where = f"round {record.round}" if record.round is not None else "its round"
    if status == "promoted":
        text = f"promoted at {where}" + ("" if record.active else "; not active now")
    elif status.startswith("kept previous"):
        reason = status.removeprefix("kept previous").lstrip(": ")
        text = f"not promoted at {where}" + (f" ({reason})" if reason else "")
        text += "; active by rollback" if record.active else ""
    else:
        text = status
    return f"; {text}"


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
    if not parts:
        return ""
    # a round without held-out cases validated on its training cases: not "held-out"
    where = "held-out" if metrics.get("holdout_cases", [None]) else "on its training cases,"
    return f" {where} {', '.join(parts)}"
