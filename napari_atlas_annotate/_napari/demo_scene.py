"""The demo's two napari viewers: an abdominal CT with its organ truth, and a lumbar study.

Everything is opened through this plugin's own reader (``viewer.open(...,
plugin="napari-atlas-annotate")``), so the demo shows exactly what a user gets from
File > Open. Run as a module it renders the scene under the X display it is given and
writes screenshots and a JSON summary; ``atlas-annotate demo --headless`` runs it that way
inside a private Xvfb, so no window reaches the user's screen and the caller's own Qt
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

PLUGIN = "napari-atlas-annotate"

#: Series shown first in the study viewer (others stay loaded, hidden).
PREFERRED_STUDY_SERIES = ("Sagittal T2/STIR", "Sagittal T1")


def show_ct(viewer, ct_path: str | Path, truth_path: str | Path | None) -> None:
    """Open the CT (and its truth as Labels) and go to the slice with the most organ."""
    viewer.open(str(ct_path), plugin=PLUGIN)
    if truth_path is None:
        return
    [labels] = viewer.open(str(truth_path), plugin=PLUGIN)
    data = np.asarray(labels.data)
    if data.any():
        counts = np.count_nonzero(data.reshape(data.shape[0], -1), axis=1)
        index = [int(np.argmax(counts)), data.shape[1] // 2, data.shape[2] // 2]
        world = labels.data_to_world(index)
        viewer.dims.set_point(0, world[0])


def show_study(viewer, study_path: str | Path) -> None:
    """Open every series of a lumbar study and show the sagittal plane radiologically.

    World axes are (S, P, L); a sagittal view displays S vertically (head up) and P
    horizontally (anterior on the left), with the slider running right to left.
    """
    layers = viewer.open(str(study_path), plugin=PLUGIN)
    names = [layer.name for layer in layers]
    shown = next((n for n in PREFERRED_STUDY_SERIES if n in names), names[0] if names else None)
    for layer in layers:
        layer.visible = layer.name == shown
    viewer.dims.order = (2, 0, 1)
    # napari 0.9 moved the camera to viewer.scene; older versions keep viewer.camera.
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    camera.orientation2d = ("up", "right")
    if shown is not None:
        layer = viewer.layers[shown]
        centre = np.array(layer.data.shape) // 2
        viewer.dims.set_point(2, layer.data_to_world(centre)[2])
    viewer.reset_view()


def describe_viewer(viewer) -> list[dict[str, Any]]:
    """JSON-ready list of a viewer's layers: type, shape, spacing, orientation, source."""
    rows = []
    for layer in viewer.layers:
        grid = layer.metadata.get(META_KEY, {})
        affine = np.asarray(grid.get("affine", np.eye(4)), float)
        row: dict[str, Any] = {
            "name": layer.name,
            "type": layer._type_string,
            "shape": [int(s) for s in grid.get("shape", layer.data.shape)],
            "spacing": [round(float(s), 4) for s in np.linalg.norm(affine[:3, :3], axis=0)],
            "dtype": str(layer.data.dtype),
            "source": grid.get("source", ""),
            "visible": bool(layer.visible),
        }
        if layer._type_string == "labels":
            values = np.unique(np.asarray(layer.data))
            names = grid.get("class_names", [])
            row["classes_present"] = [
                names[v - 1] if 0 < v <= len(names) else int(v) for v in values.tolist() if v
            ]
        rows.append(row)
    return rows


def render(scene: dict[str, Any]) -> dict[str, Any]:
    """Build both viewers (shown, on the current display), screenshot them, close them.

    Parameters
    ----------
    scene
        ``ct``, ``truth`` (or None), ``study`` (or None): paths to open;
        ``screenshot`` and ``study_screenshot``: PNG paths to write; ``result``: where
        :func:`main` writes the summary.

    Returns
    -------
    dict
        ``layers`` per viewer, ``screenshots`` written, and ``seconds`` taken.
    """
    import napari
    from napari.utils.io import imsave

    start = time.perf_counter()
    summary: dict[str, Any] = {"viewers": {}, "screenshots": {}}
    viewer = napari.Viewer(title="atlas-annotate demo: CT abdomen", show=True)
    try:
        show_ct(viewer, scene["ct"], scene.get("truth"))
        summary["viewers"]["ct"] = describe_viewer(viewer)
        image = viewer.screenshot(canvas_only=True)
        imsave(scene["screenshot"], image)
        summary["screenshots"]["ct"] = _image_stats(scene["screenshot"], image)
    finally:
        viewer.close()
    if scene.get("study"):
        viewer = napari.Viewer(title="atlas-annotate demo: lumbar MRI", show=True)
        try:
            show_study(viewer, scene["study"])
            summary["viewers"]["study"] = describe_viewer(viewer)
            image = viewer.screenshot(canvas_only=True)
            imsave(scene["study_screenshot"], image)
            summary["screenshots"]["study"] = _image_stats(scene["study_screenshot"], image)
        finally:
            viewer.close()
    summary["seconds"] = round(time.perf_counter() - start, 2)
    return summary


def _image_stats(path: str, image: np.ndarray) -> dict[str, Any]:
    rgb = np.asarray(image)[..., :3].astype(np.float32)
    return {
        "path": str(path),
        "size": [int(s) for s in image.shape[:2]],
        "std": round(float(rgb.std()), 2),
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
