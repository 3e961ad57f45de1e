"""An RSNA 2024 lumbar spine dataset folder, as Kaggle distributes it.

The layout::

    <root>/train_images/<study_id>/<series_id>/<instance>.dcm
    <root>/train_series_descriptions.csv   study_id, series_id, series_description
    <root>/train.csv                       study_id + 25 grade columns
    <root>/train_label_coordinates.csv     study_id, series_id, instance_number, ...

(``test_images`` / ``test_series_descriptions.csv`` for the test set, which has no grades.)
The series CSV is where each series' name comes from: the DICOM headers need not carry a
SeriesDescription, and the grader finds the Sagittal T2/STIR by that name. Series are
matched to CSV rows by their folder names, which are RSNA's ``study_id`` and ``series_id``.

Examples
--------
>>> rsna = find_rsna_folder(Path("rsna-2024/train_images"))  # doctest: +SKIP
>>> rsna.description(4003253, 702807833)  # doctest: +SKIP
'Sagittal T2/STIR'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..spine_grades import read_series_descriptions_csv

__all__ = ["MissingSeries", "RsnaFolder", "find_rsna_folder"]

_SPLITS = ("train", "test")


@dataclass(frozen=True)
class MissingSeries:
    """A row of the series CSV whose series is not on disk: no DICOM series in
    ``folder`` (``images/<study_id>/<series_id>``). Kaggle's CSV lists some series whose
    files were taken out of the dataset."""

    csv: Path
    study_id: int
    series_id: int
    description: str
    folder: Path


@dataclass
class RsnaFolder:
    """What an RSNA dataset folder holds.

    Attributes
    ----------
    root
        The folder holding the CSVs and the images folder.
    images
        ``<split>_images``.
    descriptions
        ``{(study_id, series_id): series_description}`` from the series CSV.
    grades, points
        ``train.csv`` and ``train_label_coordinates.csv`` when present (training split).
    series_csv
        ``<split>_series_descriptions.csv``, where ``descriptions`` come from.
    """

    root: Path
    images: Path
    descriptions: dict[tuple[int, int], str] = field(default_factory=dict)
    grades: Path | None = None
    points: Path | None = None
    series_csv: Path = Path()

    def graded_studies(self) -> set[int]:
        """study_ids with a row in the grades CSV (none for the test split)."""
        if self.grades is None:
            return set()
        from ..spine_grades import read_grades_csv

        return set(read_grades_csv(self.grades))

    def description(self, study_id: int, series_id: int) -> str | None:
        """The series' description in the CSV; None when the CSV lacks the series."""
        return self.descriptions.get((int(study_id), int(series_id)))

    def missing_series(self, path: str | Path, found: set[tuple[int, int]]) -> list[MissingSeries]:
        """The CSV's rows for the studies at or under ``path`` (the dataset's root or
        images folder: every study of the CSV; a study folder: that study) whose
        ``(study_id, series_id)`` is not among the series ``found`` on disk."""
        try:
            parts = Path(path).resolve().relative_to(self.images.resolve()).parts
        except ValueError:  # the root, or a folder outside the images folder
            parts = () if Path(path).resolve() == self.root.resolve() else None
        if parts is None or len(parts) > 1:
            return []
        study = int(parts[0]) if parts and parts[0].isdigit() else None
        if parts and study is None:
            return []
        return [
            MissingSeries(self.series_csv, s, r, d, self.images / str(s) / str(r))
            for (s, r), d in sorted(self.descriptions.items())
            if (study is None or s == study) and (s, r) not in found
        ]

    def study_folders(self, path: str | Path) -> tuple[list[Path], list[Path]] | None:
        """The study folders under ``path``, the dataset's root or its images folder,
        and the root's other entries (its CSVs and other folders) when ``path`` is the
        root; None for a path inside a study or elsewhere. Entries are named under
        ``path`` as given (not resolved), in name order; hidden files and links to
        folders left out, as a scan of the folder leaves them out.

        Each study folder holds one study (Kaggle's layout), so the studies can be read
        one by one (:func:`~.sources.find_cases`).
        """
        path = Path(path)
        resolved = path.resolve()
        if resolved == self.images.resolve():
            images, others = path, []
        elif resolved == self.root.resolve() and not (path / self.images.name).is_symlink():
            images = path / self.images.name
            others = [e for e in _entries(path) if e.name != self.images.name]
        else:
            return None
        return _entries(images), others

    def series_of(self, series_folder: Path) -> tuple[int, int] | None:
        """``(study_id, series_id)`` of a series folder ``images/<study>/<series>``, or
        None for a folder not laid out that way."""
        try:
            parts = Path(series_folder).resolve().relative_to(self.images.resolve()).parts
            study, series = parts
            return int(study), int(series)
        except ValueError:  # elsewhere, other depth, or names that are no numbers
            return None


def _entries(folder: Path) -> list[Path]:
    """What a scan of ``folder`` looks into: its folders (not links to folders) and its
    files not named with a leading dot."""
    return sorted(
        e
        for e in folder.iterdir()
        if (e.is_dir() and not e.is_symlink()) or (e.is_file() and not e.name.startswith("."))
    )


def find_rsna_folder(path: str | Path) -> RsnaFolder | None:
    """The RSNA dataset ``path`` is in: its root, its images folder, or a study or series
    folder inside it. None when no ``<split>_series_descriptions.csv`` sits beside a
    ``<split>_images`` folder above ``path``.

    Raises
    ------
    ValueError
        When the series CSV cannot be read (names the file).
    """
    path = Path(path).resolve()
    for folder in (path, *path.parents[:3]):
        for split in _SPLITS:
            csv = folder / f"{split}_series_descriptions.csv"
            images = folder / f"{split}_images"
            if csv.is_file() and images.is_dir():
                return _read(folder, split, csv, images)
    return None


def _read(root: Path, split: str, csv: Path, images: Path) -> RsnaFolder:
    try:
        rows = read_series_descriptions_csv(csv)
    except (KeyError, ValueError, OSError) as exc:
        raise ValueError(
            f"{csv}: cannot be read as an RSNA series descriptions CSV ({exc}); it needs the "
            "columns study_id, series_id, series_description."
        ) from None
    grades = root / f"{split}.csv"
    points = root / f"{split}_label_coordinates.csv"
    return RsnaFolder(
        root,
        images,
        {(int(s), int(r)): d for s, r, d in rows},
        grades if grades.is_file() else None,
        points if points.is_file() else None,
        csv,
    )
