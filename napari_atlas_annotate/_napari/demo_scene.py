"""The demo's two napari windows: the organ project in the annotator dock, and the spine
project in the same dock with its grade sheet.

Both windows show what ``atlas-annotate open PROJECT --annotator demo`` shows: the queue
(most uncertain proposal first), the first case loaded with the starter model's proposal,
ready to correct. Run as a module it renders the scene under the X display it is given
and writes screenshots and a JSON summary; ``atlas-annotate demo --headless`` runs it that
way inside a private Xvfb, so no window reaches the user's screen and the caller's own Qt
application (if any) is never touched.

Usage (what ``demo --headless`` runs)::

    DISPLAY=:99 python -m napari_atlas_annotate._napari.demo_scene scene.json
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .layers import META_KEY

#: Window size of the screenshots (the dock needs room beside the canvas).
WINDOW_SIZE = (1500, 950)
#: The cell the spine window opens on (the most often stenosed level of the canal).
FIRST_CELL = ("spinal_canal_stenosis", "l4_l5")


def show_organ_project(viewer, folder: str | Path, annotator: str):
    """Dock the annotator on ``folder`` (its queue's first case opens with its proposal) and
    go to the slice where the proposal has the most organ."""
    from .._qt.annotator import add_annotator_dock

    dock = add_annotator_dock(viewer, folder, annotator)
    layer = dock.labels_layer
    if layer is not None:
        data = np.asarray(layer.data)
        if data.any():
            counts = np.count_nonzero(data.reshape(data.shape[0], -1), axis=1)
            index = [int(np.argmax(counts)), data.shape[1] // 2, data.shape[2] // 2]
            viewer.dims.set_point(0, layer.data_to_world(index)[0])
    return dock


def show_spine_project(viewer, folder: str | Path, annotator: str):
    """Dock the annotator on the spine project: the grade sheet with the first case's
    proposal, showing the point of :data:`FIRST_CELL`."""
    from .._qt.annotator import add_annotator_dock

    dock = add_annotator_dock(viewer, folder, annotator)
    sheet = dock.grade_sheet
    if sheet is not None and sheet.case_id is not None:
        sheet.go_to(*FIRST_CELL)
    return dock


def describe_viewer(viewer) -> list[dict[str, Any]]:
    """JSON-ready list of a viewer's layers: type, shape, spacing, orientation, source."""
    rows = []
    for layer in viewer.layers:
        grid = layer.metadata.get(META_KEY, {})
        affine = np.asarray(grid.get("affine", np.eye(4)), float)
        row: dict[str, Any] = {
            "name": layer.name,
            "type": layer._type_string,
            "shape": [int(s) for s in grid.get("shape", np.shape(layer.data))],
            "spacing": [round(float(s), 4) for s in np.linalg.norm(affine[:3, :3], axis=0)],
            "visible": bool(layer.visible),
        }
        if layer._type_string == "labels":
            values = np.unique(np.asarray(layer.data))
            names = grid.get("class_names", [])
            row["classes_present"] = [
                names[v - 1] if 0 < v <= len(names) else int(v) for v in values.tolist() if v
            ]
        elif layer._type_string == "points":
            row["points"] = len(layer.data)
        rows.append(row)
    return rows


def _grab(viewer, path: str) -> dict[str, Any]:
    """Save the whole window (canvas and docks) as ``path``; return its size and contrast."""
    from qtpy.QtWidgets import QApplication

    window = viewer.window._qt_window
    window.resize(*WINDOW_SIZE)
    for _ in range(5):
        QApplication.processEvents()
    image = window.grab()
    if not image.save(path):
        raise OSError(f"could not write the screenshot {path}")
    canvas = np.asarray(viewer.screenshot(canvas_only=True))[..., :3].astype(np.float32)
    return {
        "path": str(path),
        "size": [image.width(), image.height()],
        "canvas_std": round(float(canvas.std()), 2),
    }


def render(scene: dict[str, Any]) -> dict[str, Any]:
    """Open both projects (shown, on the current display), screenshot them, close them.

    Parameters
    ----------
    scene
        ``organs`` and ``spine``: project folders; ``annotator``; ``screenshot`` and
        ``study_screenshot``: PNG paths to write; ``result``: where :func:`main` writes
        the summary.

    Returns
    -------
    dict
        ``viewers`` (layers per window), ``cases`` (the case each window opened, its
        proposal version and the dock's message), ``screenshots`` and ``seconds``.
    """
    import napari

    start = time.perf_counter()
    summary: dict[str, Any] = {"viewers": {}, "screenshots": {}, "opened": {}}
    windows = (
        ("organs", show_organ_project, "screenshot", "atlas-annotate demo: CT organs"),
        ("spine", show_spine_project, "study_screenshot", "atlas-annotate demo: lumbar MRI"),
    )
    for key, show, shot, title in windows:
        viewer = napari.Viewer(title=title, show=True)
        try:
            dock = show(viewer, scene[key], scene["annotator"])
            if dock.last_error:
                raise RuntimeError(f"{scene[key]}: {dock.last_error}")
            summary["opened"][key] = _opened(dock)
            summary["viewers"][key] = describe_viewer(viewer)
            summary["screenshots"][key] = _grab(viewer, scene[shot])
            dock.close_case()
        finally:
            viewer.close()
    summary["seconds"] = round(time.perf_counter() - start, 2)
    return summary


def _opened(dock) -> dict[str, Any]:
    """The case a dock opened and the version it shows."""
    if dock.grade_sheet is not None and dock.grade_sheet.session is not None:
        base = dock.grade_sheet.session.base
        message = dock.grade_sheet.status.text()
    else:
        base = dock.base
        message = dock.status.text()
    return {
        "case": dock.case_id,
        "version_id": base.id if base else None,
        "kind": base.kind if base else None,
        "model_version": base.model_version if base else None,
        "queue": dock.case_ids(),
        "message": message,
    }


def main(argv: list[str] | None = None) -> int:
    """Render the scene described by a JSON file; write the summary to ``scene["result"]``.

    (A file rather than stdout: Qt and napari may print to stdout themselves.)
    """
    argv = sys.argv[1:] if argv is None else argv
    scene = json.loads(Path(argv[0]).read_text())
    summary = render(scene)
    Path(scene["result"]).write_text(json.dumps(summary))
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through `atlas-annotate demo`
    sys.exit(main())
