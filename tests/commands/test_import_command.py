"""Labels made elsewhere, brought in by ``atlas-annotate add --labels`` and ``import``: the
dataset's own label names, label grids in another voxel order, per-class mask values."""

import json
import shutil

import nibabel as nib
import numpy as np
import pytest

from napari_atlas_annotate.classes import ABDOMEN_ATLAS_CLASSES
from napari_atlas_annotate.cli import main
from napari_atlas_annotate.phantoms import write_phantoms
from napari_atlas_annotate.project import Project

SMALL_CT = (16, 32, 32)
LIVER = ABDOMEN_ATLAS_CLASSES.index("liver") + 1
SPLEEN = ABDOMEN_ATLAS_CLASSES.index("spleen") + 1


@pytest.fixture
def ct(tmp_path):
    """One small CT phantom as NIfTI: ``(image path, its label nibabel image)``."""
    case = write_phantoms(tmp_path / "phantoms", 1, 0, 0, "nifti", ct_shape=SMALL_CT).parent
    case = case / "ct" / "ct_000"
    return case / "ct.nii.gz", nib.load(case / "combined_labels.nii.gz")


def _project(tmp_path):
    assert main(["init", str(tmp_path / "proj"), "--task", "organs"]) == 0
    return tmp_path / "proj"


def _run(capsys, *argv):
    capsys.readouterr()
    code = main([*map(str, argv)])
    out = capsys.readouterr()
    return code, out.out + out.err


def _nnunet_dataset(tmp_path, ct, labels: np.ndarray, names: dict) -> tuple:
    """``Dataset009_Liver`` with one case whose labels use the dataset's own numbering."""
    image, label = ct
    root = tmp_path / "nnUNet_raw" / "Dataset009_Liver"
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    shutil.copy(image, root / "imagesTr" / "liv_000_0000.nii.gz")
    nib.save(nib.Nifti1Image(labels, label.affine), root / "labelsTr" / "liv_000.nii.gz")
    content = {"channel_names": {"0": "CT"}, "labels": names, "numTraining": 1}
    (root / "dataset.json").write_text(json.dumps({**content, "file_ending": ".nii.gz"}))
    return root


def _imported(proj, case_id, annotator="nn"):
    with Project(proj) as p:
        versions = p.versions(case_id, annotator=annotator)
        return p.read_mask(versions[-1]) if versions else None


# -- the dataset's dataset.json names its label values --------------------------------------
def test_labels_are_mapped_to_the_project_classes_by_the_dataset_json_names(tmp_path, ct, capsys):
    truth = np.asarray(ct[1].dataobj)
    own = ((truth == LIVER) * 1 + (truth == SPLEEN) * 2).astype(np.uint8)  # liver=1, spleen=2
    root = _nnunet_dataset(tmp_path, ct, own, {"background": 0, "Liver": 1, "spleen": 2})
    proj = _project(tmp_path)
    code, out = _run(capsys, "add", proj, root, "--labels", "nn")
    assert code == 0 and "imported labels of 1 case(s): liv_000" in out
    stored = _imported(proj, "liv_000")
    expected = np.where(truth == LIVER, LIVER, np.where(truth == SPLEEN, SPLEEN, 0))
    assert np.array_equal(stored, expected.transpose(2, 1, 0))


def test_msd_style_label_names_are_read_too(tmp_path, ct, capsys):
    truth = np.asarray(ct[1].dataobj)
    own = ((truth == SPLEEN) * 1).astype(np.uint8)
    root = _nnunet_dataset(tmp_path, ct, own, {"0": "background", "1": "spleen"})
    proj = _project(tmp_path)
    code, _ = _run(
        capsys, "add", proj, root / "imagesTr" / "liv_000_0000.nii.gz", "--id", "liv_000"
    )
    assert code == 0
    code, out = _run(
        capsys, "import", proj, root / "labelsTr" / "liv_000.nii.gz", "--case", "liv_000",
        "--annotator", "nn",
    )  # fmt: skip
    assert code == 0, out
    stored = _imported(proj, "liv_000")
    assert np.array_equal(stored, np.where(truth == SPLEEN, SPLEEN, 0).transpose(2, 1, 0))


def test_a_dataset_label_the_project_lacks_is_refused_by_name(tmp_path, ct, capsys):
    truth = np.asarray(ct[1].dataobj)
    own = ((truth == LIVER) * 1 + (truth == SPLEEN) * 2).astype(np.uint8)
    root = _nnunet_dataset(tmp_path, ct, own, {"background": 0, "liver": 1, "cancer": 2})
    proj = _project(tmp_path)
    code, out = _run(capsys, "add", proj, root, "--labels", "nn")
    assert code == 1
    assert str(root / "dataset.json") in out and "'cancer' (value 2)" in out
    assert "--classes" in out
    assert _imported(proj, "liv_000") is None


# -- per-class masks ----------------------------------------------------------------------
def _atlas_case(tmp_path, ct, masks: dict) -> tuple:
    """``AbdomenAtlas/BDMAP_00000001/ct.nii.gz`` with ``segmentations/<class>.nii.gz``."""
    image, label = ct
    case = tmp_path / "AbdomenAtlas" / "BDMAP_00000001"
    (case / "segmentations").mkdir(parents=True)
    shutil.copy(image, case / "ct.nii.gz")
    for name, mask in masks.items():
        nib.save(nib.Nifti1Image(mask, label.affine), case / "segmentations" / f"{name}.nii.gz")
    return case


def test_per_class_masks_of_0_and_255_are_imported(tmp_path, ct, capsys):
    truth = np.asarray(ct[1].dataobj)
    masks = {c: (truth == k).astype(np.uint8) * 255 for k, c in enumerate(ABDOMEN_ATLAS_CLASSES, 1)}
    case = _atlas_case(tmp_path, ct, masks)
    proj = _project(tmp_path)
    code, out = _run(capsys, "add", proj, case.parent, "--labels", "nn")
    assert code == 0, out
    assert np.array_equal(_imported(proj, "BDMAP_00000001"), truth.transpose(2, 1, 0))


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda m: m.astype(np.float32) * 0.9 + 0.01, "probability"),  # a model's soft output
        (lambda m: m.astype(np.uint8) * 2, None),  # fine: 0 and one other value
    ],
)
def test_a_per_class_mask_must_be_0_and_one_value(tmp_path, ct, capsys, make, said):
    truth = np.asarray(ct[1].dataobj)
    masks = {"liver": make(truth == LIVER), "spleen": (truth == SPLEEN).astype(np.uint8)}
    case = _atlas_case(tmp_path, ct, masks)
    proj = _project(tmp_path)
    code, out = _run(capsys, "add", proj, case.parent, "--labels", "nn")
    stored = _imported(proj, "BDMAP_00000001")
    if said is None:
        assert code == 0, out
        assert np.array_equal(stored == LIVER, (truth == LIVER).transpose(2, 1, 0))
        return
    assert code == 1
    assert str(case / "segmentations" / "liver.nii.gz") in out and said in out
    assert stored is None


def test_a_multi_label_map_in_a_per_class_folder_is_refused(tmp_path, ct, capsys):
    truth = np.asarray(ct[1].dataobj)
    kidneys = np.where(truth == 3, 1, np.where(truth == 4, 2, 0)).astype(np.uint8)
    case = _atlas_case(tmp_path, ct, {"kidney_left": kidneys})
    proj = _project(tmp_path)
    code, out = _run(capsys, "add", proj, case.parent, "--labels", "nn")
    assert code == 1
    assert "kidney_left.nii.gz" in out and "values 0, 1, 2" in out
    assert _imported(proj, "BDMAP_00000001") is None


def test_overlapping_masks_are_imported_each_disputed_voxel_to_the_smaller_structure(
    tmp_path, ct, capsys
):
    truth = np.asarray(ct[1].dataobj)  # (x, y, z) as the NIfTI stores it
    liver = truth == LIVER
    gall = np.zeros_like(liver)  # a gallbladder mask reaching into the liver
    x, y, z = (int(np.median(a)) for a in np.nonzero(liver))
    gall[x - 2 : x + 2, y - 2 : y + 2, z - 2 : z + 3] = True
    spleen = truth == SPLEEN
    stomach = np.zeros_like(spleen)  # a stomach mask overlapping the spleen's edge
    x, y, z = (int(np.median(a)) for a in np.nonzero(spleen))
    stomach[x - 1 : x + 1, y - 1 : y + 1, :] = True
    masks = {"liver": liver, "gall_bladder": gall, "spleen": spleen, "stomach": stomach}
    case = _atlas_case(tmp_path, ct, {k: m.astype(np.uint8) for k, m in masks.items()})
    proj = _project(tmp_path)
    code, out = _run(capsys, "add", proj, case.parent, "--labels", "nn")
    assert code == 0, out

    both = [(liver & gall).sum(), (spleen & stomach).sum()]
    assert min(both) > 0 and both[0] != both[1]
    assert "the class masks of 1 case(s) overlap" in out
    assert f"{sum(both):,} voxel(s) claimed by more than one class mask" in out
    smaller = "stomach" if stomach.sum() < spleen.sum() else "spleen"
    pairs = [
        f"gall_bladder & liver {both[0]:,}, to gall_bladder",
        f"spleen & stomach {both[1]:,}, to {smaller}",
    ]
    assert "; ".join(pairs if both[0] > both[1] else pairs[::-1]) in out  # largest first
    assert "each went to the smaller structure" in out
    sizes = [m.sum() for m in masks.values()]
    assert len(set(sizes)) == len(sizes)  # no ties: the smaller structure is well defined
    expected = np.zeros(truth.shape, np.uint8)
    for name in sorted(masks, key=lambda c: -masks[c].sum()):  # the smallest painted last
        expected[masks[name]] = ABDOMEN_ATLAS_CLASSES.index(name) + 1
    assert np.array_equal(_imported(proj, "BDMAP_00000001"), expected.transpose(2, 1, 0))
    with Project(proj) as p:
        [version] = p.versions("BDMAP_00000001", annotator="nn")
        assert f"{sum(both):,} voxel(s) claimed" in version.note
        [audit] = [a for a in p.audit_trail("BDMAP_00000001") if a["action"] == "import"]
        assert audit["detail"]["overlaps"]["voxels"] == sum(both)

    # the import command says the same, and nothing at all for masks that do not overlap
    def import_masks(annotator):
        folder = case / "segmentations"
        return _run(
            capsys, "import", proj, folder, "--case", "BDMAP_00000001", "--annotator", annotator
        )

    code, out = import_masks("ts")
    assert code == 0 and f"note: {sum(both):,} voxel(s) claimed" in out
    (case / "segmentations" / "gall_bladder.nii.gz").unlink()
    (case / "segmentations" / "stomach.nii.gz").unlink()
    code, out = import_masks("ts2")
    assert code == 0 and "claimed" not in out


# -- label grids ------------------------------------------------------------------------
def _loose_case(tmp_path, ct, label: nib.Nifti1Image):
    """``data/case01.nii.gz`` with ``case01_seg.nii.gz`` beside it."""
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(ct[0], folder / "case01.nii.gz")
    nib.save(label, folder / "case01_seg.nii.gz")
    return folder


@pytest.mark.parametrize("axes", [[[0, -1], [1, 1], [2, 1]], [[2, 1], [0, -1], [1, -1]]])
def test_a_label_saved_in_another_voxel_order_is_reordered_onto_the_image(
    tmp_path, ct, capsys, axes
):
    truth = np.asarray(ct[1].dataobj)
    same = nib.Nifti1Image(truth, ct[1].affine)
    folder = _loose_case(tmp_path, ct, same.as_reoriented(np.array(axes)))  # same world
    proj = _project(tmp_path)
    code, out = _run(capsys, "add", proj, folder, "--labels", "nn")
    assert code == 0 and "imported labels of 1 case(s): case01" in out, out
    assert np.array_equal(_imported(proj, "case01"), truth.transpose(2, 1, 0))


@pytest.mark.parametrize(("shift_mm", "said"), [(0.01, "a fraction of a voxel"), (5.0, "not")])
def test_a_label_off_the_image_grid_says_by_how_much(tmp_path, ct, capsys, shift_mm, said):
    truth = np.asarray(ct[1].dataobj)
    affine = ct[1].affine.copy()
    affine[0, 3] += shift_mm
    folder = _loose_case(tmp_path, ct, nib.Nifti1Image(truth, affine))
    proj = _project(tmp_path)
    code, out = _run(capsys, "add", proj, folder, "--labels", "nn")
    assert code == 1
    assert f"voxel centres lie up to {shift_mm:g} mm" in out and said in out
    assert "image's affine" in out and "nearest neighbour" in out
    assert _imported(proj, "case01") is None


# -- DICOM SEG ------------------------------------------------------------------------------
def test_a_dicom_seg_of_the_cases_series_is_imported_by_segment_label(tmp_path, capsys):
    from napari_atlas_annotate.export.dicom_seg import build_segmentation, write_segmentation

    manifest = write_phantoms(tmp_path / "dicom", 1, 0, 0, "dicom", ct_shape=SMALL_CT)
    proj = _project(tmp_path)
    assert main(["add", str(proj), str(manifest)]) == 0
    with Project(proj) as p:
        case = p.cases()[0].id
        image = p.load_image(case, 0)
    labels = np.zeros(image.shape, np.uint8)  # the SEG's own numbering: spleen 1, liver 2
    labels[3:9, 4:12, 5:15] = 1
    labels[6:12, 18:26, 10:20] = 2
    seg = build_segmentation(
        image.metadata["files"], labels, ["spleen", "liver"], case, keep_identifiers=True
    )
    path = write_segmentation(seg, tmp_path / "seg.dcm")
    code, out = _run(capsys, "import", proj, path, "--case", case, "--annotator", "seg")
    assert code == 0, out
    expected = np.select([labels == 1, labels == 2], [SPLEEN, LIVER], 0)
    assert np.array_equal(_imported(proj, case, "seg"), expected)
    shutil.copy(next((tmp_path / "dicom").rglob("*.dcm")), tmp_path / "x.dcm")
    code, out = _run(capsys, "import", proj, tmp_path / "x.dcm", "--case", case, "--annotator", "s")
    assert code == 2 and "not a DICOM SEG" in out  # a CT slice given as labels
