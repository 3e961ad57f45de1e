"""A folder of NIfTI files as a dataset lays it out: which files are the cases' images,
which are labels, and which labels belong to which image.

Datasets keep labels beside their images, so a folder given to ``atlas-annotate add`` must
not turn label files into cases. The layouts the field uses:

- AbdomenAtlas: ``BDMAP_00000001/ct.nii.gz`` with ``combined_labels.nii.gz`` (one
  multi-label map) and ``segmentations/<class>.nii.gz`` (one mask per class) beside it;
- nnU-Net v2: ``imagesTr/<case>_0000.nii.gz`` (``_0000`` is the channel) and
  ``labelsTr/<case>.nii.gz``; the Medical Segmentation Decathlon the same without the
  channel suffix (and with macOS ``._`` files, which are left out with every hidden file);
- loose files: ``case01.nii.gz`` with ``case01_seg.nii.gz`` (``_label``, ``_mask``, ``_gt``).

A NIfTI file is a label when it sits in a label folder (:data:`LABEL_FOLDERS`, e.g.
``labelsTr``, ``segmentations``, ``masks``), when its name says so (:data:`LABEL_NAME`),
or when its header's intent is ``NIFTI_INTENT_LABEL``. Every other NIfTI file is an image,
except further channels of an nnU-Net case (``_0001``...): a case here has one image.

An image's labels are, in this order of preference: a whole-case label file in its own
folder (``combined_labels.nii.gz``, ``label.nii.gz``, ``seg.nii.gz``...; only when that
folder holds no other image), a label file named after the image (``<name>_seg.nii.gz``
beside it, ``<name>.nii.gz`` in a label folder inside its folder or beside it, as
``labelsTr`` is beside ``imagesTr``), or a label folder of per-class masks inside the
image's own folder (only when that folder holds no other image).

A label file in a label folder of an nnU-Net or Decathlon dataset numbers its classes the
dataset's way: :func:`dataset_label_names` reads them from the ``dataset.json`` beside that
folder, so that an import maps them to the project's classes by name.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib

from ..io.folder_walk import walk
from ..io.nifti import is_nifti_path
from .errors import ProjectError

#: Folder names (compared without case) whose NIfTI files are labels, not images.
LABEL_FOLDERS = frozenset(
    {
        "labels",
        "label",
        "labelstr",
        "labelsts",
        "labelsva",
        "segmentations",
        "segmentation",
        "segs",
        "seg",
        "masks",
        "mask",
        "gt",
        "ground_truth",
        "groundtruth",
        "annotations",
        "annotation",
    }
)

#: File names (without .nii/.nii.gz, compared without case) that mark a label file: a
#: whole-case label (``combined_labels``, ``seg``...) or ``<image>_seg`` and the like.
_WHOLE_CASE = r"combined_labels|labels?|seg|segmentation|mask|gt|ground_truth"
LABEL_NAME = re.compile(
    rf"^(?P<whole>{_WHOLE_CASE})$|^(?P<image>.+?)[_.-](?:seg|segmentation|labels?|mask|gt)$",
    re.IGNORECASE,
)

#: nnU-Net's channel suffix: ``<case>_0000.nii.gz`` is channel 0 of ``<case>``.
_CHANNEL = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")


def _stem(path: Path) -> str:
    return re.sub(r"\.nii(\.gz)?$", "", path.name, flags=re.IGNORECASE)


def _has_label_intent(path: Path) -> bool:
    """True when the NIfTI header says the file holds labels (intent code 1002)."""
    try:
        return nib.load(str(path)).header.get_intent()[0] == "label"
    except Exception:  # unreadable headers are images for now; loading them reports why
        return False


@dataclass
class NiftiImage:
    """One case's image in a NIfTI folder.

    Attributes
    ----------
    path
        The image file.
    name
        The case's name when the file name carries more than it (nnU-Net's
        ``<case>_0000``); ``None`` to name the case by the usual rules.
    labels
        The labels found for it (a label file, or a folder of per-class masks), if any.
    """

    path: Path
    name: str | None = None
    labels: Path | None = None


@dataclass
class NiftiFolder:
    """What :func:`scan_nifti_folder` found.

    Attributes
    ----------
    images
        One per case, in path order.
    left_out
        ``(path, why)`` for NIfTI files that are neither an image nor an image's labels
        (label files no image was found for, further nnU-Net channels).
    """

    images: list[NiftiImage] = field(default_factory=list)
    left_out: list[tuple[Path, str]] = field(default_factory=list)


def nifti_files(folder: Path) -> list[Path]:
    """Every NIfTI file under ``folder`` (linked folders included), hidden files and
    folders left out, in path order."""
    found = []
    for root, dirs, files in walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root, f) for f in sorted(files) if is_nifti_path(f) and f[0] != "."]
    return found


def _in_label_folder(path: Path, folder: Path) -> bool:
    parts = path.relative_to(folder).parts[:-1]
    return any(part.lower() in LABEL_FOLDERS for part in (folder.name, *parts))


def _is_label(path: Path, folder: Path) -> bool:
    return (
        _in_label_folder(path, folder)
        or LABEL_NAME.match(_stem(path)) is not None
        or _has_label_intent(path)
    )


def _channels(images: list[Path]) -> dict[Path, tuple[str, int]]:
    """``{image: (case, channel)}`` for folders named the nnU-Net way.

    A folder is, when every image in it ends in ``_NNNN`` and every case has channels
    0000, 0001... without a gap, and either it holds several cases or it is named like an
    image folder (``imagesTr``): ``patient_0001``, ``patient_0002`` are two cases.
    """
    by_folder: dict[Path, list[Path]] = {}
    for path in images:
        by_folder.setdefault(path.parent, []).append(path)
    out = {}
    for folder, paths in by_folder.items():
        matches = [_CHANNEL.match(_stem(p)) for p in paths]
        if not all(matches):
            continue
        per_case: dict[str, set[int]] = {}
        for m in matches:
            per_case.setdefault(m["case"], set()).add(int(m["channel"]))
        gapless = all(found == set(range(len(found))) for found in per_case.values())
        if gapless and (len(per_case) > 1 or folder.name.lower().startswith("image")):
            out.update(
                {p: (m["case"], int(m["channel"])) for p, m in zip(paths, matches, strict=True)}
            )
    return out


class _Labels:
    """The label files of a folder, looked up the ways :func:`scan_nifti_folder` pairs."""

    def __init__(self, labels: list[Path]) -> None:
        self.unused = dict.fromkeys(labels)  # insertion-ordered set
        self.by_dir: dict[Path, list[Path]] = {}
        for path in labels:
            self.by_dir.setdefault(path.parent, []).append(path)

    def take(self, path: Path) -> None:
        """Mark a label file, or every file of a label folder, as some image's."""
        for member in self.by_dir.get(path, [path]):
            self.unused.pop(member, None)

    def _label_dirs_in(self, folder: Path) -> list[Path]:
        return sorted(
            d for d in self.by_dir if d.parent == folder and d.name.lower() in LABEL_FOLDERS
        )

    def whole_case(self, folder: Path) -> Path | None:
        whole = [p for p in self.by_dir.get(folder, []) if _whole(p)]
        return min(whole, key=_whole_rank) if whole else None

    def named(self, key: str, folder: Path) -> Path | None:
        """``<key>_seg`` beside it, or ``<key>`` in a label folder inside or beside it."""
        for path in self.by_dir.get(folder, []):
            match = LABEL_NAME.match(_stem(path))
            if match and match["image"] == key:
                return path
        partner = _partner_dirs(folder, self)
        for label_dir in self._label_dirs_in(folder) + partner:
            for path in self.by_dir.get(label_dir, []):
                if _stem(path) == key:
                    return path
        return None

    def per_class_folder(self, folder: Path) -> Path | None:
        dirs = self._label_dirs_in(folder)
        return dirs[0] if len(dirs) == 1 else None


def _whole(path: Path) -> bool:
    match = LABEL_NAME.match(_stem(path))
    return bool(match and match["whole"])


def _whole_rank(path: Path) -> int:
    """``combined_labels`` (AbdomenAtlas' multi-label map) before ``label``, ``seg``..."""
    return 0 if _stem(path).lower() == "combined_labels" else 1


def _partner_dirs(folder: Path, labels: _Labels) -> list[Path]:
    """Label folders beside an image folder, the one with the same suffix first
    (``imagesTr`` -> ``labelsTr``, then any other label folder there)."""
    siblings = sorted(
        d for d in labels.by_dir if d.parent == folder.parent and d.name.lower() in LABEL_FOLDERS
    )
    suffix = folder.name.lower().removeprefix("images").removeprefix("image")
    same = [d for d in siblings if suffix and d.name.lower().endswith(suffix)]
    return same + [d for d in siblings if d not in same]


def _label_folders_beside(folder: Path) -> list[Path]:
    """Label files of the label folders beside an image folder given on its own
    (``imagesTr`` given: ``labelsTr`` and the like beside it)."""
    if not folder.name.lower().startswith("image"):
        return []
    siblings = [d for d in folder.parent.iterdir() if d.name.lower() in LABEL_FOLDERS]
    return [path for d in sorted(siblings) if d.is_dir() for path in nifti_files(d)]


def scan_nifti_folder(folder: str | Path) -> NiftiFolder:
    """Sort the NIfTI files under ``folder`` into cases' images, their labels, and the rest.

    See the module docstring for the rules. Reads NIfTI headers only.
    """
    folder = Path(folder)
    files = nifti_files(folder)
    is_label = {path: _is_label(path, folder) for path in files}
    images = [p for p in files if not is_label[p]]
    beside = _label_folders_beside(folder)
    labels = _Labels([p for p in files if is_label[p]] + beside)
    channels = _channels(images)
    found = NiftiFolder()
    per_folder: dict[Path, int] = {}
    for path in images:
        if channels.get(path, ("", 0))[1] == 0:
            per_folder[path.parent] = per_folder.get(path.parent, 0) + 1
    for path in images:
        case, channel = channels.get(path, (None, 0))
        if channel:
            found.left_out.append(
                (
                    path,
                    f"channel {channel:04d} of case {case} (nnU-Net naming); a case here has "
                    "one image, its channel 0000. Add this file on its own to make it a case.",
                )
            )
            continue
        key = case or _stem(path)
        alone = per_folder[path.parent] == 1
        candidates = [
            labels.whole_case(path.parent) if alone else None,
            labels.named(key, path.parent),
            labels.per_class_folder(path.parent) if alone else None,
        ]
        candidates = [c for c in candidates if c is not None]
        for candidate in candidates:  # the others are this case's labels too, not strays
            labels.take(candidate)
        found.images.append(NiftiImage(path, case, candidates[0] if candidates else None))
    beside_set = set(beside)
    for path in [p for p in labels.unused if p not in beside_set]:
        found.left_out.append((path, "label file with no image found for it."))
    return found


#: The file an nnU-Net v2 or Medical Segmentation Decathlon dataset names its labels in.
DATASET_JSON = "dataset.json"


def dataset_label_names(label_file: str | Path) -> tuple[Path, dict[int, str]] | None:
    """The class names a dataset gives the values of ``label_file``, if it says.

    A label file in a label folder (``labelsTr``...) of a dataset with a ``dataset.json``
    beside that folder has its values named there: nnU-Net v2 writes ``"labels":
    {"background": 0, "liver": 1}``, the Decathlon (and nnU-Net v1) ``{"0": "background",
    "1": "liver"}``.

    Returns
    -------
    tuple or None
        ``(dataset.json path, {value: name})`` without the background (value 0), or
        ``None`` when no ``dataset.json`` applies or it names no labels.

    Raises
    ------
    ProjectError
        The ``dataset.json`` is unreadable, or its labels are not one value per name
        (nnU-Net's region-based labels).
    """
    label_file = Path(label_file)
    if label_file.parent.name.lower() not in LABEL_FOLDERS:
        return None
    path = label_file.parent.parent / DATASET_JSON
    if not path.is_file():
        return None
    try:
        labels = json.loads(path.read_text()).get("labels")
    except (OSError, ValueError, AttributeError) as exc:
        raise ProjectError(
            f"{path}: not a readable dataset.json ({exc}); it names the values of "
            f"{label_file}. Fix the file, or move it away to import the values as they are "
            "(value i = the project's class i)."
        ) from exc
    if not isinstance(labels, dict) or not labels:
        return None
    names: dict[int, str] = {}
    for key, value in labels.items():
        if isinstance(value, int) and not isinstance(value, bool):  # nnU-Net v2
            number, name = value, key
        elif isinstance(value, str) and key.strip().isdigit():  # Decathlon / nnU-Net v1
            number, name = int(key), value
        else:
            raise ProjectError(
                f"{path}: label {key!r}: {value!r} is not one value per class name (nnU-Net "
                "region-based labels cannot be imported as one label map). Import each "
                "case's labels as a folder of <class>.nii.gz masks instead."
            )
        if number in names:
            raise ProjectError(
                f"{path}: value {number} is named twice ({names[number]!r}, {name!r}). "
                "Fix the dataset.json."
            )
        names[number] = name
    names.pop(0, None)
    return (path, names) if names else None
