"""The review dock shows the next lumbar study in the open study's layers when it has the
same series (and the same readers): what the viewer shows must be exactly what opening that
study in a fresh viewer shows. A study with other series, or other readers, falls back to
new layers and must also look as a fresh open does. Organ cases are shown in the open
case's layers too (image, readers, consensus, disagreement), under the same rule."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_atlas_annotate._qt.review import ReviewDock
from napari_atlas_annotate.grade_sheet import GradeSheet, LevelPoint
from napari_atlas_annotate.phantoms import write_phantoms
from napari_atlas_annotate.project import Project
from napari_atlas_annotate.project.importing import read_grade_sheet
from napari_atlas_annotate.project.sources import cases_from_path
from napari_atlas_annotate.spine_grades import GRADES, LEVELS

from .conftest import make_two_reader_project

pytestmark = [
    pytest.mark.qt,
    pytest.mark.filterwarnings("ignore:Non-orthogonal slicing:UserWarning"),  # angled stacks
]


def _add_studies(project: Project, manifest, readers: dict[str, tuple[str, ...]]) -> None:
    """Add the manifest's studies under the names of ``readers``, each read by its readers:
    the first as the phantom's truth, each other one a grade higher and 4 mm off on three
    cells of its own."""
    entries = json.loads(manifest.read_text())["cases"]
    cases = cases_from_path(manifest, "spine")
    for (name, who_read), case, entry in zip(readers.items(), cases, entries, strict=True):
        project.add_case(name, case.images, truth=case.truth, source=case.source)
        root = manifest.parent
        truth = read_grade_sheet(root / entry["grades"], entry["study_id"], root / entry["points"])
        for k, who in enumerate(who_read):
            sheet = GradeSheet.from_dict(truth.to_dict())
            for cell in sorted(sheet.points)[3 * k : 3 * k + 3] if k else ():
                sheet.set_grade(*cell, GRADES[(GRADES.index(sheet.grade(*cell)) + 1) % 3])
                p = sheet.points[cell]
                sheet.points[cell] = LevelPoint(p.series, p.instance, p.x + 4, p.y - 4)
            project.save_grades_version(name, sheet, kind="imported", annotator=who)


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    """Lumbar studies: a, b (the same three series), stacks (its Axial T2 as three angled
    stacks: other series) read by alice, bob, cy; two (the same series as a) read by
    alice and bob only."""
    tmp = tmp_path_factory.mktemp("reuse")
    project = Project.create(tmp / "project", task="spine")
    three = ("alice", "bob", "cy")
    plain = write_phantoms(tmp / "plain", 0, 3, 3)
    _add_studies(project, plain, {"a": three, "b": three, "two": ("alice", "bob")})
    stacked = write_phantoms(tmp / "stacked", 0, 1, 4, axial_stacks=LEVELS[2:])
    _add_studies(project, stacked, {"stacks": three})
    project.close()
    yield tmp / "project"


def _same(a, b) -> bool:
    """Deep equality of nested dicts, lists and arrays."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)
    return a == b


def _shown(viewer, dock) -> dict:
    """What a fresh open shows: each layer (kind, name, order, visibility, data, affine,
    metadata, display range; points, their features and colours, selection and mode),
    the slice, the dims and camera, the active layer, the table and the status line."""
    layers = []
    for layer in viewer.layers:
        entry = {
            "kind": layer._type_string,
            "name": layer.name,
            "visible": layer.visible,
            "data": np.asarray(layer.data),
            "affine": layer.affine.affine_matrix,
            "scale": np.asarray(layer.scale),
            "metadata": dict(layer.metadata),
            "opacity": layer.opacity,
            "blending": layer.blending,
        }
        if layer._type_string == "image":
            entry |= {
                "contrast_limits": list(layer.contrast_limits),
                "contrast_limits_range": list(layer.contrast_limits_range),
                "colormap": layer.colormap.name,
                "gamma": layer.gamma,
            }
        elif layer._type_string == "points":
            entry |= {
                "features": {k: list(v) for k, v in layer.features.items()},
                "face_color": np.asarray(layer.face_color),
                "border_color": np.asarray(layer.border_color),
                "size": np.asarray(layer.size),
                "symbol": [str(s) for s in np.atleast_1d(layer.symbol)],
                "text": [str(t) for t in np.atleast_1d(layer.text.values)],
                "selected": set(layer.selected_data),
                "mode": str(layer.mode),
            }
        layers.append(entry)
    table, camera = dock.table, viewer.scene.camera
    return {
        "layers": layers,
        "dims_order": tuple(viewer.dims.order),
        # the slice shown: the position on the axes napari slices (not the displayed
        # ones, where it moves nothing on screen and napari keeps whatever it had)
        "slice_at": [viewer.dims.point[a] for a in viewer.dims.not_displayed],
        "ndisplay": viewer.dims.ndisplay,
        "dims_range": np.asarray(viewer.dims.range),
        "camera": (np.asarray(camera.center), camera.zoom, tuple(camera.orientation2d)),
        "active": viewer.layers.selection.active.name,
        "selected": sorted(layer.name for layer in viewer.layers.selection),
        "rows": [
            [table.item(r, c).text() if table.item(r, c) else None for c in range(3)]
            for r in range(table.rowCount())
        ],
        "status": dock.status.text(),
    }


def _assert_same(ours: dict, fresh: dict) -> None:
    assert [layer["name"] for layer in ours["layers"]] == [
        layer["name"] for layer in fresh["layers"]
    ]
    for mine, theirs in zip(ours["layers"], fresh["layers"], strict=True):
        for key in theirs:
            assert _same(mine[key], theirs[key]), f"{mine['name']}: {key} differs"
    for key in fresh:
        if key != "layers":
            assert _same(ours[key], fresh[key]), f"{key} differs"


def _fresh(make_napari_viewer, folder, case_id: str, row: int | None = None) -> dict:
    viewer = make_napari_viewer()
    dock = ReviewDock(viewer, folder, lead="lead")
    assert dock.load_case(case_id), dock.last_error
    if row is not None:
        dock.table.setCurrentCell(row, 0)
    return _shown(viewer, dock)


def test_the_next_study_with_the_same_series_shows_as_a_fresh_open(make_napari_viewer, studies):
    viewer = make_napari_viewer()
    dock = ReviewDock(viewer, studies, lead="lead")
    assert dock.load_case("a"), dock.last_error
    dock.table.setCurrentCell(5, 0)  # the lead looked at another cell, on another series
    images = [s.layer for s in dock.series.values()]
    points = list(dock.reader_points.values())
    assert dock.load_case("b"), dock.last_error
    # shown in the same layers (else this test would not test the reuse) ...
    assert [s.layer for s in dock.series.values()] == images
    assert list(dock.reader_points.values()) == points
    assert len(viewer.layers) == len(images) + len(points)
    # ... and exactly as opening b in a fresh viewer shows it
    _assert_same(_shown(viewer, dock), _fresh(make_napari_viewer, studies, "b"))
    # the images differ from a's: b's own data are in them
    a = ReviewDock(make_napari_viewer(), studies)
    assert a.load_case("a"), a.last_error
    assert not np.array_equal(
        a.series["Sagittal T1"].layer.data, dock.series["Sagittal T1"].layer.data
    )
    # navigating the reused layers shows what a fresh open shows there
    dock.table.setCurrentCell(7, 0)
    _assert_same(_shown(viewer, dock), _fresh(make_napari_viewer, studies, "b", row=7))
    # a series turned on by hand still brings the readers' points (watchers reconnected)
    dock.series["Sagittal T2/STIR"].layer.visible = True
    assert dock.shown_series is dock.series["Sagittal T2/STIR"]


def test_a_study_with_other_series_or_readers_gets_new_layers(make_napari_viewer, studies):
    viewer = make_napari_viewer()
    dock = ReviewDock(viewer, studies, lead="lead")
    assert dock.load_case("a"), dock.last_error
    images = [s.layer for s in dock.series.values()]
    points = list(dock.reader_points.values())

    # other series (an Axial T2 of three stacks): every layer new, as a fresh open
    assert dock.load_case("stacks"), dock.last_error
    assert not any(s.layer in images for s in dock.series.values())
    assert not any(layer in points for layer in dock.reader_points.values())
    _assert_same(_shown(viewer, dock), _fresh(make_napari_viewer, studies, "stacks"))

    # back to the three series: new layers again, as a fresh open
    assert dock.load_case("b"), dock.last_error
    assert len(dock.series) == 3 and len(viewer.layers) == 3 + 4
    _assert_same(_shown(viewer, dock), _fresh(make_napari_viewer, studies, "b"))

    # the same series, other readers: images kept, the readers' layers new
    images = [s.layer for s in dock.series.values()]
    points = list(dock.reader_points.values())
    assert dock.load_case("two"), dock.last_error
    assert list(dock.reader_points) == ["alice", "bob", "consensus"]
    assert [s.layer for s in dock.series.values()] == images
    assert not any(layer in points for layer in dock.reader_points.values())
    _assert_same(_shown(viewer, dock), _fresh(make_napari_viewer, studies, "two"))


def test_no_reuse_when_the_lead_added_a_layer_above(make_napari_viewer, studies):
    """A layer of the lead's above the dock's: a fresh open puts the study above it, so
    the dock does too (new layers), rather than leave the study under it."""
    viewer = make_napari_viewer()
    dock = ReviewDock(viewer, studies, lead="lead")
    assert dock.load_case("a"), dock.last_error
    images = [s.layer for s in dock.series.values()]
    viewer.add_points(np.zeros((1, 3)), name="mine")
    assert dock.load_case("b"), dock.last_error
    assert not any(s.layer in images for s in dock.series.values())
    assert viewer.layers[0].name == "mine" and len(viewer.layers) == 1 + 3 + 4


@pytest.fixture
def organ_readers(tmp_path):
    project, _ = make_two_reader_project(tmp_path)
    project.close()
    return tmp_path / "proj"


def test_organ_cases_open_in_the_open_cases_layers_as_a_fresh_open(
    make_napari_viewer, organ_readers
):
    viewer = make_napari_viewer()
    dock = ReviewDock(viewer, organ_readers, lead="lead")
    assert dock.load_case("ct0"), dock.last_error
    first = list(viewer.layers)
    dock.consensus_layer.paint((0, 5, 5), 8, refresh=True)  # the lead's stroke on ct0
    painted = np.count_nonzero(dock.edited_consensus() != dock.consensus)
    assert painted > 0
    viewer.layers["alice"].visible = True
    viewer.layers.selection.active = viewer.layers["ct0 image"]
    assert dock.load_case("ct1"), dock.last_error
    assert list(viewer.layers) == first  # the same five layers, showing ct1
    assert len(dock.consensus_layer._undo_history) == 0  # ct0's stroke is not undone on ct1
    _assert_same(_shown(viewer, dock), _fresh(make_napari_viewer, organ_readers, "ct1"))

    assert dock.load_case("ct0"), dock.last_error  # back: the stroke left there comes back
    assert f"({painted} voxel(s)) are restored" in dock.status.text()
    assert np.count_nonzero(dock.edited_consensus() != dock.consensus) == painted


def test_no_organ_reuse_when_the_lead_added_a_layer_above(make_napari_viewer, organ_readers):
    viewer = make_napari_viewer()
    dock = ReviewDock(viewer, organ_readers, lead="lead")
    assert dock.load_case("ct0"), dock.last_error
    first = list(viewer.layers)
    viewer.add_points(np.zeros((1, 3)), name="mine")
    assert dock.load_case("ct1"), dock.last_error
    assert not any(layer in first for layer in viewer.layers)
    assert viewer.layers[0].name == "mine" and len(viewer.layers) == 1 + 5
