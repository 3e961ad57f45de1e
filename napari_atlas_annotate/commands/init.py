"""``atlas-annotate init PROJECT --task organs|spine [--classes ...]``."""

from __future__ import annotations

from ..cli import non_negative_int
from ..project import Project


def configure(parser) -> None:
    parser.add_argument("project", help="folder to create the project in")
    parser.add_argument("--task", required=True, choices=["organs", "spine"])
    parser.add_argument(
        "--classes",
        nargs="+",
        help="organ class names in label-id order (default: AbdomenAtlas 1.0)",
    )
    parser.add_argument("--name", default="", help="display name (default: folder name)")
    parser.add_argument(
        "--label-tolerance",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="organs: annotators may leave a border up to N voxels off instead of "
        "repainting it; retraining rounds allow for it when judging a new model (default 0)",
    )


def run(args) -> int:
    project = Project.create(
        args.project,
        task=args.task,
        classes=args.classes,
        name=args.name,
        label_tolerance=args.label_tolerance,
    )
    print(f"created {project.task} project {project.folder}")
    if project.task == "organs":
        print(f"classes: {', '.join(f'{i + 1}={c}' for i, c in enumerate(project.classes))}")
    project.close()
    return 0
