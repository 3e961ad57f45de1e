import numpy as np
import pytest

from napari_atlas_annotate.project.edit_log import (
    EditEvent,
    LabelDiff,
    bbox_of,
    diff_labels,
    replay,
)


def _strokes(rng, labels, n):
    """Random box-shaped strokes of random classes, returning (before, after) pairs."""
    out = []
    for _ in range(n):
        before = labels.copy()
        z, y, x = (rng.integers(0, s - 4) for s in labels.shape)
        dz, dy, dx = rng.integers(1, 5, size=3)
        labels[z : z + dz, y : y + dy, x : x + dx] = rng.integers(0, 4)
        out.append((before, labels.copy()))
    return out


def test_diff_roundtrip_bytes_apply_and_revert():
    rng = np.random.default_rng(0)
    before = rng.integers(0, 3, size=(10, 20, 30)).astype(np.uint8)
    after = before.copy()
    after[2:5, 3:9, 10:12] = 7
    diff = diff_labels(before, after)
    assert diff.bbox == ((2, 5), (3, 9), (10, 12)) or diff.n_changed < 3 * 6 * 2
    blob = diff.to_bytes()
    back = LabelDiff.from_bytes(blob, diff.bbox)
    work = before.copy()
    back.apply(work)
    np.testing.assert_array_equal(work, after)
    back.revert(work)
    np.testing.assert_array_equal(work, before)


def test_no_change_gives_none_and_region_limits_search():
    a = np.zeros((5, 5, 5), np.uint8)
    assert diff_labels(a, a.copy()) is None
    b = a.copy()
    b[4, 4, 4] = 1
    b[0, 0, 0] = 2
    d = diff_labels(a, b, region=((3, 5), (3, 5), (3, 5)))
    assert d.bbox == ((4, 5), (4, 5), (4, 5))
    assert d.n_changed == 1


def test_replay_reproduces_final_bit_for_bit():
    rng = np.random.default_rng(1)
    proposal = np.zeros((16, 32, 32), np.uint8)
    proposal[4:10, 8:20, 8:20] = 1
    labels = proposal.copy()
    events = []
    for before, after in _strokes(rng, labels, 40):
        diff = diff_labels(before, after)
        if diff is not None:
            restored = LabelDiff.from_bytes(diff.to_bytes(), diff.bbox)
            events.append(EditEvent("c", "a", "paint", diff=restored))
    np.testing.assert_array_equal(replay(proposal, events), labels)
    assert not np.array_equal(proposal, labels)


def test_uint16_labels_survive():
    before = np.zeros((3, 3, 3), np.uint16)
    after = before.copy()
    after[1, 1, 1] = 300
    d = LabelDiff.from_bytes(diff_labels(before, after).to_bytes(), ((1, 2), (1, 2), (1, 2)))
    assert d.new.dtype == np.uint16 and int(d.new[0]) == 300


def test_diff_is_small_next_to_snapshot():
    labels = np.zeros((60, 256, 256), np.uint8)
    after = labels.copy()
    zz, yy, xx = np.ogrid[:60, :256, :256]
    after[(zz - 30) ** 2 + (yy - 100) ** 2 + (xx - 100) ** 2 < 36] = 3
    blob = diff_labels(labels, after).to_bytes()
    assert len(blob) < labels.nbytes / 1000


@pytest.mark.parametrize("shape", [(1, 1, 1), (4, 1, 9)])
def test_bbox_of_edges(shape):
    m = np.zeros(shape, bool)
    assert bbox_of(m) is None
    m[-1, -1, -1] = True
    assert bbox_of(m) == tuple((s - 1, s) for s in shape)
