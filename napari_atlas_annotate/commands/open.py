"""``atlas-annotate open PROJECT --annotator NAME``: napari with the annotator dock.

The project and annotator are checked before any window opens (a folder that is not a
project is an ``error:`` line and exit code 2). Without a display it says so and exits
with code 2; ``--screenshot PATH`` opens the first case, saves a picture of the whole
window and exits (use it under ``xvfb-run`` for documentation or a smoke test).
"""

from __future__ import annotations

import argparse
import os
import sys

EXIT_NO_DISPLAY = 2

NO_DISPLAY_MESSAGE = (
    "atlas-annotate open: no display found (neither DISPLAY nor WAYLAND_DISPLAY is set), so "
    "napari cannot open a window. Run it in a desktop session, over 'ssh -X', or under a "
    "virtual display: xvfb-run -a atlas-annotate open PROJECT --annotator NAME "
    "--screenshot shot.png"
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", help="project folder (made by 'atlas-annotate init')")
    parser.add_argument("--annotator", required=True, help="your name, as logged with edits")
    parser.add_argument("--case", help="open this case first (default: the queue's first)")
    parser.add_argument(
        "--three-views",
        action="store_true",
        help="open with coronal and sagittal views beside the axial one (the dock's '3 views'; "
        "needs napari-orthogonal-views)",
    )
    parser.add_argument(
        "--screenshot",
        metavar="PNG",
        help="save a screenshot of the window with the case loaded, then exit",
    )


def has_display(environ: dict[str, str] | None = None) -> bool:
    """Whether a window can open: always off Linux, else DISPLAY or WAYLAND_DISPLAY."""
    environ = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return True
    return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))


def run(args: argparse.Namespace) -> int:
    from ..project import Project

    project = Project(args.project)  # ProjectError (a ValueError) -> 'error:' and exit 2
    project.ensure_annotator(args.annotator)
    if args.case:
        project.case(args.case)
    if not has_display():
        print(NO_DISPLAY_MESSAGE, file=sys.stderr)
        return EXIT_NO_DISPLAY

    import napari

    from .._qt.annotator import add_annotator_dock

    viewer = napari.Viewer(title=f"atlas-annotate: {project.config.name} ({args.annotator})")
    dock = add_annotator_dock(viewer, project, args.annotator)
    if args.case and dock.case_id != args.case:
        dock.load_case(args.case)
    if args.three_views:
        dock.three_views.setChecked(True)  # a missing plugin: said in the dock, not fatal
    if args.screenshot:
        from qtpy.QtWidgets import QApplication

        viewer.window._qt_window.resize(1400, 900)
        for _ in range(5):
            QApplication.processEvents()
        viewer.reset_view()
        QApplication.processEvents()
        image = viewer.window._qt_window.grab()
        if not image.save(args.screenshot):
            print(f"atlas-annotate open: could not write {args.screenshot}", file=sys.stderr)
            viewer.close()
            return 1
        print(f"atlas-annotate open: screenshot {args.screenshot}")
        viewer.close()
        return 0 if dock.last_error is None else 1
    napari.run()
    return 0
