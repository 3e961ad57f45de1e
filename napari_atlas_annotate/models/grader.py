"""Lumbar MRI stenosis grader: locate the five disc levels, grade 5 conditions x 5 levels.

Pipeline of :func:`grade_study`:

1. the locator (a small heatmap UNet) finds the five disc levels on a mid-sagittal slab of
   the Sagittal T2/STIR, resampled in patient coordinates at a fixed pixel size;
2. each condition's point is its level's canal point plus the mean offset learnt from
   training points, projected onto the condition's series (Sagittal T2 for the canal,
   Sagittal T1 for the foramina, Axial T2 for the subarticular zones);
3. a 2.5D crop around each point goes through the classifier of its condition group,
   giving probabilities for Normal/Mild, Moderate and Severe.

The result is a :class:`GradeSheet` whose grades (argmax), probabilities and points are
the proposal the grade sheet shows. A grader is saved as a MONAI-bundle-shaped folder
(``configs/metadata.json`` + ``models/model.pt``, a plain state dict read with
``torch.load(weights_only=True)``).

Examples
--------
>>> model = load_grader(STARTER_GRADER)          # doctest: +SKIP
>>> sheet = grade_study(case.series, model)       # doctest: +SKIP
>>> sheet.grade("spinal_canal_stenosis", "l4_l5")  # doctest: +SKIP
'Moderate'
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from ..grade_sheet import GradeSheet
from ..spine_grades import CONDITIONS, GRADES, LEVELS
from ..stacks import nearest_stack, series_stacks, stack_holding
from ..volume import Volume
from .bundle import read_weights
from .grader_geometry import normalized_intensity, sample_slab, world_to_point
from .grader_levels import (
    MIN_DISC_SEPARATION_MM,
    decode_heatmaps,
    locator_center,
    locator_input,
    plane_to_levels,
)
from .grader_net import GROUP_OF, GROUP_SERIES, LATERAL_OF, GraderNet

#: The committed starter grader (trained on site-0 phantoms by scripts/make_starter_grader.py).
STARTER_GRADER = Path(__file__).parent / "starter" / "grader"

#: Task name written into the bundle metadata (and checked on load).
TASK = "spine_grading"

#: The suffix a study gives each stack of a series acquired as several.
_STACK_SUFFIX = re.compile(r"\s*\(stack \d+/\d+\)$")

_SERIES_ALIASES = {
    "Sagittal T1": ("sagittal t1", "sag t1", "t1 sag", "sagittal_t1"),
    "Sagittal T2/STIR": ("sagittal t2/stir", "sagittal t2", "sag t2", "stir", "sagittal_t2"),
    "Axial T2": ("axial t2", "ax t2", "t2 axial", "axial_t2"),
}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``'auto'`` -> CUDA when available, else CPU; a name is checked as the organ model's
    (:func:`~.devices.select_device`: CUDA asked for without a GPU is a ValueError saying
    so, where torch failed later with an AssertionError)."""
    if isinstance(device, torch.device):
        return device
    from .devices import select_device

    return select_device(str(device))


def match_series(series: Mapping[str, Volume]) -> dict[str, Volume]:
    """Map a study's series to the three RSNA descriptions (exact name or a usual alias).

    Raises ``ValueError`` when the Sagittal T2/STIR (needed to find the levels) is missing.
    """
    out: dict[str, Volume] = {}
    for canonical, aliases in _SERIES_ALIASES.items():
        if canonical in series:
            out[canonical] = series[canonical]
            continue
        for name, vol in series.items():
            # one of several stacks: "Axial T2 (stack 2/3)" is an "Axial T2"
            names = {
                name,
                _STACK_SUFFIX.sub("", name),
                (vol.metadata or {}).get("series_description"),
            }
            if any(str(n).strip().lower() in aliases for n in names if n):
                out[canonical] = vol
                break
    if "Sagittal T2/STIR" not in out:
        raise ValueError(
            f"the grader needs a 'Sagittal T2/STIR' series to find the disc levels; the "
            f"study has {sorted(series)}. Name the series by its SeriesDescription."
        )
    return out


class SeriesCache:
    """Normalised intensities of a study's series, computed once per study.

    ``series`` maps the grader's names to a volume; ``stacks`` to every stack of that
    series when it was acquired as several (angled axial blocks), else to ``[volume]``.
    """

    def __init__(self, series: Mapping[str, Volume]) -> None:
        self.series = match_series(series)
        self.stacks = {
            name: series_stacks(vol, series.values()) for name, vol in self.series.items()
        }
        self._data: dict[int, np.ndarray] = {}

    def data(self, name: str, volume: Volume | None = None) -> np.ndarray:
        """Normalised intensities of ``volume`` (one of ``stacks[name]``; default the
        series' first)."""
        volume = self.series[name] if volume is None else volume
        if id(volume) not in self._data:
            self._data[id(volume)] = normalized_intensity(volume)
        return self._data[id(volume)]

    def near(self, name: str, world: np.ndarray) -> Volume:
        """The stack of series ``name`` nearest the RAS point ``world``."""
        return nearest_stack(self.stacks[name], world)

    def volume_of(self, point) -> Volume | None:
        """The volume a grade-sheet point is on: its series, and the stack holding its
        instance. None when the study lacks the series."""
        volume = self.series.get(point.series)
        if volume is None:
            return None
        return stack_holding(self.stacks[point.series], point.instance) or volume


def locate_levels(
    model: GraderNet, cache: SeriesCache, device: torch.device | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """RAS positions ``(5, 3)`` of the five disc levels' canal points, and confidences."""
    device = device or next(model.parameters()).device
    vol = cache.series["Sagittal T2/STIR"]
    center = locator_center(vol, model.config)
    slab = locator_input(vol, cache.data("Sagittal T2/STIR"), model.config, center)
    with torch.no_grad():
        logits = model.locate(torch.from_numpy(slab[None]).to(device))[0].float().cpu().numpy()
    pixel_mm = float(model.config["locator"]["pixel_mm"])
    rowcols, confidence = decode_heatmaps(logits, min_separation=MIN_DISC_SEPARATION_MM / pixel_mm)
    world = plane_to_levels(rowcols, center, model.config)
    # The canal point lies on the canal's own sagittal plane, not the slab's.
    world[:, 0] = center[0]
    return world, confidence


def condition_point_world(model: GraderNet, levels_world: np.ndarray) -> dict:
    """``{(condition, level): RAS}``: each level's canal point plus the learnt offset."""
    offsets = model.config["offsets"]
    return {
        (c, lv): levels_world[i] + np.asarray(offsets[c][lv], float)
        for c in CONDITIONS
        for i, lv in enumerate(LEVELS)
    }


def cell_crop(
    model: GraderNet, cache: SeriesCache, condition: str, center: np.ndarray, **jitter
) -> np.ndarray:
    """The classifier's 2.5D crop ``(planes, h, w)`` of one condition around ``center``."""
    series, view = GROUP_SERIES[GROUP_OF[condition]]
    crop = model.config["crop"]
    volume = cache.near(series, center)
    return sample_slab(
        volume,
        cache.data(series, volume),
        center,
        view,
        tuple(crop["shape"]),
        float(crop["pixel_mm"]),
        tuple(crop["slab_mm"]),
        lateral=LATERAL_OF[condition],
        **jitter,
    )


def grade_study(
    series: Mapping[str, Volume], model: GraderNet, device: str | torch.device = "auto"
) -> GradeSheet:
    """Propose grades, probabilities and points for one lumbar MRI study.

    Parameters
    ----------
    series
        ``{SeriesDescription: Volume}`` with ``'Sagittal T2/STIR'`` (required),
        ``'Sagittal T1'`` and ``'Axial T2'``. A missing T1 or axial series leaves its
        conditions at the training prior, with no point.
    model
        A :class:`GraderNet` (:func:`load_grader`, :func:`train_grader`).
    device
        ``'auto'`` (CUDA if available), ``'cpu'``, ``'cuda'``...

    Returns
    -------
    GradeSheet
        All 25 cells with grades (argmax), probabilities and points.
    """
    dev = resolve_device(device)
    model = model.to(dev).eval()
    cache = SeriesCache(series)
    levels_world, _ = locate_levels(model, cache, dev)
    centers = condition_point_world(model, levels_world)
    prior = model.config.get("group_prior", {})
    sheet = GradeSheet()
    for group, (series_name, _view) in GROUP_SERIES.items():
        cells = [(c, lv) for c in CONDITIONS if GROUP_OF[c] == group for lv in LEVELS]
        if series_name not in cache.series:
            probs = np.tile(np.asarray(prior.get(group, [1 / 3] * 3), float), (len(cells), 1))
        else:
            crops = np.stack([cell_crop(model, cache, c, centers[(c, lv)]) for c, lv in cells])
            with torch.no_grad():
                logits = model.classify(group, torch.from_numpy(crops).to(dev))
                logits = logits / float(model.config.get("temperature", {}).get(group, 1.0))
                probs = torch.softmax(logits.float(), dim=1).cpu().numpy().astype(np.float64)
            # A floor from the training prior bounds the cost of a confident mistake.
            mix = float(model.config.get("prior_mix", 0.0))
            if mix > 0:
                floor = np.asarray(prior.get(group, [1 / 3] * 3), float)
                probs = (1 - mix) * probs + mix * floor[None, :]
            for cell in cells:
                vol = cache.near(series_name, centers[cell])
                sheet.points[cell] = world_to_point(vol, series_name, centers[cell])
        for cell, p in zip(cells, probs, strict=True):
            sheet.probabilities[cell] = [float(v) for v in p]
            sheet.grades[cell] = GRADES[int(np.argmax(p))]
    return sheet


def save_grader(model: GraderNet, folder: str | Path, metadata: dict | None = None) -> Path:
    """Write ``model`` as a MONAI-bundle-shaped folder; returns the folder.

    ``configs/metadata.json`` holds the grader's config plus ``metadata`` (e.g. training
    metrics, round, data description); ``models/model.pt`` the state dict.
    """
    import monai

    folder = Path(folder)
    (folder / "configs").mkdir(parents=True, exist_ok=True)
    (folder / "models").mkdir(parents=True, exist_ok=True)
    meta = {
        "name": "lumbar stenosis grader",
        "task": TASK,
        "version": "0.1.0",
        "monai_version": monai.__version__,
        "pytorch_version": torch.__version__.split("+")[0],
        "description": (
            "Disc-level heatmap UNet on the Sagittal T2/STIR + 2.5D crop classifiers "
            "(spinal: Sagittal T2, foraminal: Sagittal T1, subarticular: Axial T2)."
        ),
        "network_data_format": {
            "inputs": {"series": ["Sagittal T1", "Sagittal T2/STIR", "Axial T2"]},
            "outputs": {"grades": list(GRADES), "conditions": list(CONDITIONS)},
        },
        **(metadata or {}),
        "grader_config": model.config,
    }
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    tmp = folder / "models" / "model.pt.tmp"
    torch.save(state, tmp)
    tmp.replace(folder / "models" / "model.pt")
    (folder / "configs" / "metadata.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
    return folder


def read_grader_metadata(folder: str | Path) -> dict:
    """The bundle's ``configs/metadata.json`` (clear error when it is not a grader)."""
    path = Path(folder) / "configs" / "metadata.json"
    if not path.is_file():
        raise ValueError(
            f"{folder}: not a grader bundle (no configs/metadata.json); point at a folder "
            "written by save_grader or scripts/make_starter_grader.py"
        )
    meta = json.loads(path.read_text())
    if meta.get("task") != TASK or "grader_config" not in meta:
        raise ValueError(f"{path}: task is {meta.get('task')!r}, not a {TASK!r} grader bundle")
    return meta


def load_grader(folder: str | Path = STARTER_GRADER, device: str = "cpu") -> GraderNet:
    """Read a grader bundle written by :func:`save_grader` (weights_only torch.load)."""
    meta = read_grader_metadata(folder)
    weights = Path(folder) / "models" / "model.pt"
    if not weights.is_file():
        raise ValueError(f"{folder}: grader bundle has no models/model.pt")
    model = GraderNet(meta["grader_config"])
    state = read_weights(weights)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"{weights}: weights do not fit the grader network: {exc}") from None
    return model.to(resolve_device(device)).eval()
