"""Synthetic lumbar MRI studies (RSNA 2024 style) with grades and level points.

A study has three series sharing one patient frame: ``Sagittal T1``, ``Sagittal T2/STIR``
(15 slices of 128x128, about 1.8 mm pixels and 3.3-4.4 mm slices) and ``Axial T2`` (a
stack of 48 slices of 96x96 at 4 mm covering L1/L2 to L5/S1). Each of the 25
condition/level grades is drawn from RSNA-like priors and rendered into the anatomy (see
:mod:`.spine_anatomy`), and each gets a point ``(series, instance, x, y)`` where RSNA's
``train_label_coordinates.csv`` would have it: canal on the mid-sagittal T2, foramina on
the parasagittal T1, subarticular zones on the axial T2 slice through the disc.

Series layouts (array ``(z, y, x)``): sagittal slices run from patient left to right
(z -> R), rows go inferior, columns posterior (the patient faces image left); axial
slices go from inferior to superior (z -> S), rows posterior, columns to patient left.
Both are right-handed in LPS, as DICOM wants.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from ..spine_grades import (
    CONDITIONS,
    GRADES,
    LEVELS,
    SERIES_DESCRIPTIONS,
    SERIES_FOR_CONDITION,
    LevelPoint,
    column_name,
    normalize_grade,
    parse_column,
)
from ..volume import Study, Volume
from .shapes import Grid
from .spine_anatomy import LEVEL_DISC, MR_SIGNAL, MR_TISSUES, SpineAnatomy

#: Narrowing fraction range rendered for each grade (canal AP loss, fat/CSF area loss).
NARROWING: dict[str, tuple[float, float]] = {
    "Normal/Mild": (0.0, 0.22),
    "Moderate": (0.42, 0.58),
    "Severe": (0.74, 0.9),
}

#: Relative risk of degeneration per level (l1_l2 .. l5_s1): severe is likelier low down.
LEVEL_RISK = (0.45, 0.7, 1.0, 1.6, 1.25)

_SUPERSAMPLE = 3  # sub-slices averaged across each thick slice (partial volume)


@dataclass(frozen=True)
class MRSite:
    """How one hospital's lumbar MRIs differ."""

    sag_fov_mm: float = 230.0
    ax_fov_mm: float = 160.0
    sag_slice_mm: float = 3.8
    ax_slice_mm: float = 4.0
    noise: float = 0.025  # Rician sigma relative to full signal
    scale: float = 1000.0  # stored value of full signal
    bias: float = 0.25  # posterior coil shading strength
    stir: bool = False  # fat-suppressed "Sagittal T2/STIR"


def mr_site(site: int) -> MRSite:
    """The acquisition profile of ``site`` (0 = training site; others deterministic)."""
    if site < 0:
        raise ValueError(f"site must be >= 0, not {site}")
    if site == 0:
        return MRSite()
    r = np.random.default_rng([0x5917, int(site)])
    base = MRSite()
    return MRSite(
        sag_fov_mm=base.sag_fov_mm * float(r.choice([0.9, 1.12])),
        ax_fov_mm=base.ax_fov_mm * float(r.choice([0.88, 1.12])),
        sag_slice_mm=float(r.choice([3.3, 4.4])),
        ax_slice_mm=float(r.choice([3.5, 4.5])),
        noise=base.noise * float(r.choice([0.5, 1.8])),
        scale=base.scale * float(r.choice([0.4, 2.5])),
        bias=float(r.uniform(0.1, 0.45)),
        stir=bool(r.random() < 0.5),
    )


@dataclass
class SpineCase:
    """One synthetic lumbar MRI study with its truth.

    Attributes
    ----------
    study_id
        Integer study id (as RSNA's ``study_id``).
    series
        ``{SeriesDescription: Volume}`` in :data:`SERIES_DESCRIPTIONS` order; int16.
    series_ids
        ``{SeriesDescription: series_id}`` (also written as the DICOM SeriesNumber).
    grades
        ``{train.csv column: grade}`` for all 25 condition/level pairs.
    points
        One :class:`~napari_atlas_annotate.spine_grades.LevelPoint` per condition/level.
    info
        Rendered narrowing fractions, disc heights (patient S mm), site profile, seed.
    """

    study_id: int
    series: dict[str, Volume]
    series_ids: dict[str, int]
    grades: dict[str, str]
    points: list[LevelPoint]
    info: dict[str, Any] = field(default_factory=dict)

    def study(self) -> Study:
        """The series as a :class:`~napari_atlas_annotate.volume.Study`."""
        return Study(dict(self.series), {"study_id": self.study_id})

    def point(self, condition: str, level: str) -> LevelPoint:
        """The point of ``condition`` at ``level``."""
        for p in self.points:
            if p.condition == condition and p.level == level:
                return p
        raise KeyError((condition, level))


def sample_grades(rng: np.random.Generator) -> dict[str, str]:
    """Draw 25 grades with RSNA-like priors (about 80/14/6 % overall).

    A study-wide degeneration factor and a per-level risk (highest at L4/L5 and L5/S1)
    make grades of one patient, and of one level's conditions, go together.
    """
    severity = rng.gamma(2.0, 0.5)
    level_factor = np.asarray(LEVEL_RISK) * severity * rng.lognormal(0.0, 0.4, len(LEVELS))
    grades = {}
    for cond in CONDITIONS:
        for lv, f in zip(LEVELS, level_factor, strict=True):
            p_sev = min(0.06 * f, 0.45)
            p_mod = min(0.14 * f, 0.45)
            x = rng.random()
            grades[column_name(cond, lv)] = (
                "Severe" if x < p_sev else "Moderate" if x < p_sev + p_mod else "Normal/Mild"
            )
    return grades


def make_spine_phantom(
    seed: int,
    site: int = 0,
    grades: Mapping[str, str] | None = None,
    axial_stacks: Sequence[str] = (),
) -> SpineCase:
    """Make one synthetic lumbar MRI study (three series) with grades and points.

    Parameters
    ----------
    seed
        Study seed: the same ``(seed, site, grades)`` gives byte-identical arrays.
    site
        Acquisition site (0 = training site); see :func:`mr_site`.
    grades
        Optional ``{train.csv column: grade}`` overriding the drawn grades (any subset).
    axial_stacks
        Levels (e.g. ``LEVELS``) at which to acquire the ``Axial T2`` as a stack of its own
        angled along the spine there, as many lumbar protocols do, instead of one block:
        ``series`` then holds ``"Axial T2 (stack k/n)"`` volumes (metadata ``stack``,
        ``stack_count``, ``first_instance``; instance numbers run on across the stacks)
        and the subarticular points name the stack of their level. Everything else is the
        same as without it.

    Returns
    -------
    SpineCase

    Examples
    --------
    >>> case = make_spine_phantom(0)
    >>> [v.shape for v in case.series.values()]
    [(15, 128, 128), (15, 128, 128), (48, 96, 96)]
    >>> len(case.grades), len(case.points)
    (25, 25)
    """
    prof = mr_site(site)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(site), 0x5B1]))
    study_id = int(rng.integers(1_000_000, 2**31 - 1))
    series_ids = {d: int(rng.integers(100_000_000, 2**31 - 1)) for d in SERIES_DESCRIPTIONS}
    drawn = sample_grades(rng)
    for col, g in (grades or {}).items():
        parse_column(col)
        grade = normalize_grade(g)
        if grade is None:
            raise ValueError(f"grade for {col} is empty")
        drawn[col] = grade
    anatomy, fractions = _anatomy(rng, drawn)

    s_off = -150.0 + rng.uniform(-40, 40)  # patient z in scanner mm
    grids, affines = _series_grids(rng, prof, anatomy, s_off)
    series: dict[str, Volume] = {}
    for desc in SERIES_DESCRIPTIONS:
        tissue = anatomy.render(grids[desc])
        weighting = "T1" if desc == "Sagittal T1" else "T2"
        image = _signal(
            rng,
            tissue,
            grids[desc],
            anatomy,
            weighting,
            prof,
            stir=prof.stir and desc == "Sagittal T2/STIR",
        )
        meta = {"series_description": desc, "series_id": series_ids[desc], "study_id": study_id}
        series[desc] = Volume(image, affines[desc], modality="MR", metadata=meta)

    points = _points(study_id, series_ids, grids, anatomy)
    if axial_stacks:
        stacks = _axial_stacks(seed, site, prof, anatomy, grids["Axial T2"], s_off, axial_stacks)
        del series["Axial T2"]
        for k, stack in enumerate(stacks, start=1):
            stack.volume.metadata.update(
                {"series_id": series_ids["Axial T2"], "study_id": study_id}
            )
            series[f"Axial T2 (stack {k}/{len(stacks)})"] = stack.volume
        points = [
            _on_stack(p, stacks, anatomy) if p.series_id == series_ids["Axial T2"] else p
            for p in points
        ]
    discs_s = {lv: anatomy.disc_center(lv) + s_off for lv in LEVELS}
    info = {
        "seed": int(seed),
        "site": int(site),
        "narrowing": fractions,
        "disc_center_s_mm": discs_s,
        "canal_ap_mm_open": 2 * anatomy.sac_semi[1],
        "degeneration": {lv: float(anatomy.degeneration[LEVEL_DISC[lv]]) for lv in LEVELS},
        "site_profile": asdict(prof),
    }
    return SpineCase(study_id, series, series_ids, drawn, points, info)


def _fraction(rng: np.random.Generator, grade: str) -> float:
    lo, hi = NARROWING[grade]
    return float(rng.uniform(lo, hi))


def _anatomy(
    rng: np.random.Generator, grades: Mapping[str, str]
) -> tuple[SpineAnatomy, dict[str, dict[str, float]]]:
    """Vertebral column geometry with each grade turned into a narrowing fraction."""
    n_disc = 6  # T12/L1 .. L5/S1
    fractions = {
        c: {lv: _fraction(rng, grades[column_name(c, lv)]) for lv in LEVELS} for c in CONDITIONS
    }
    per_disc = {c: np.zeros(n_disc) for c in CONDITIONS}
    worst = np.zeros(n_disc)
    for c in CONDITIONS:
        for lv in LEVELS:
            d = LEVEL_DISC[lv]
            per_disc[c][d] = fractions[c][lv]
            worst[d] = max(worst[d], GRADES.index(grades[column_name(c, lv)]) / 2)
    degeneration = np.clip(0.6 * worst + rng.uniform(0, 0.4, n_disc), 0, 1)
    degeneration[0] = rng.uniform(0, 0.2)

    size = rng.uniform(0.92, 1.08)
    heights = np.array([24, 25, 26, 27, 27, 26, 28, 22], float) * size  # T12 .. S2
    disc_h = np.array([7, 8, 9, 10, 10, 9], float) * size * (1 - 0.35 * degeneration)
    semi_u = np.array([20, 21, 22, 23, 24, 25, 24, 18], float) * size
    semi_v = np.array([14.5, 15, 15.5, 16, 16.5, 17, 16, 12], float) * size
    # stack from the S1 top endplate upwards
    w = -95.0 + rng.uniform(-6, 6)
    bodies: list = [None] * 8
    discs: list = [None] * n_disc
    bodies[6] = (w - heights[6], w, semi_u[6], semi_v[6])
    bodies[7] = (w - heights[6] - 2 - heights[7], w - heights[6] - 2, semi_u[7], semi_v[7])
    for d in range(n_disc - 1, -1, -1):
        discs[d] = (w, w + disc_h[d])
        w += disc_h[d]
        bodies[d] = (w, w + heights[d], semi_u[d], semi_v[d])
        w += heights[d]
    texture = []
    for _ in range(8):
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        texture.append((direction * 2 * np.pi / rng.uniform(20, 60), float(rng.uniform(0, 6.3))))
    anatomy = SpineAnatomy(
        bodies=bodies,
        discs=discs,
        degeneration=degeneration,
        canal=per_disc["spinal_canal_stenosis"],
        foramen_left=per_disc["left_neural_foraminal_narrowing"],
        foramen_right=per_disc["right_neural_foraminal_narrowing"],
        recess_left=per_disc["left_subarticular_stenosis"],
        recess_right=per_disc["right_subarticular_stenosis"],
        lordosis_mm=float(rng.uniform(6, 16)),
        lordosis_apex_w=float(0.5 * sum(discs[3]) + rng.uniform(-10, 10)),
        sac_center_v=float(16 * size + 10 + rng.uniform(-1, 1)),
        sac_semi=(
            float(11 * size * rng.uniform(0.9, 1.1)),
            float(7.5 * size * rng.uniform(0.9, 1.1)),
        ),
        fat_mm=float(rng.uniform(10, 35)),
        texture=texture,
    )
    return anatomy, fractions


def _series_grids(rng, prof: MRSite, a: SpineAnatomy, s_off: float):
    """Sampling grids (with sub-slices) and (z, y, x) -> RAS affines of the three series."""
    grids, affines = {}, {}
    spine_mid_w = 0.5 * (a.bodies[1][1] + a.bodies[6][1])
    for desc in ("Sagittal T1", "Sagittal T2/STIR"):
        n, ny, nx = 15, 128, 128
        ds = prof.sag_slice_mm * rng.uniform(0.95, 1.05)
        pix = prof.sag_fov_mm * rng.uniform(0.96, 1.04) / nx
        u_mid = rng.uniform(-2, 2)
        w_c = spine_mid_w + rng.uniform(-8, 8)
        v_c = 12.0 + rng.uniform(-8, 8)
        k = np.arange(n * _SUPERSAMPLE)
        sub = (k + 0.5) / _SUPERSAMPLE - 0.5  # sub-slice positions in slice units
        u = u_mid + ((n - 1) / 2 - sub) * ds  # z -> patient right (u decreasing)
        w = w_c + ((ny - 1) / 2 - np.arange(ny)) * pix  # rows go inferior
        v = v_c + (np.arange(nx) - (nx - 1) / 2) * pix  # columns go posterior
        grids[desc] = Grid(("u", "w", "v"), {"u": u, "v": v, "w": w})
        aff = np.eye(4)
        aff[:3, 0] = (ds, 0, 0)
        aff[:3, 1] = (0, 0, -pix)
        aff[:3, 2] = (0, -pix, 0)
        aff[:3, 3] = (-(u_mid + (n - 1) / 2 * ds), -v[0], w[0] + s_off)
        affines[desc] = aff
    n, ny, nx = 48, 96, 96
    dz = prof.ax_slice_mm * rng.uniform(0.97, 1.03)
    pix = prof.ax_fov_mm * rng.uniform(0.96, 1.04) / nx
    w_mid = 0.5 * (a.disc_center("l1_l2") + a.disc_center("l5_s1")) + rng.uniform(-4, 4)
    k = np.arange(n * _SUPERSAMPLE)
    sub = (k + 0.5) / _SUPERSAMPLE - 0.5
    w = w_mid + (sub - (n - 1) / 2) * dz  # z -> superior
    v_c = float(a.sac_center_v + a.lordosis(w_mid)) - 5 + rng.uniform(-6, 6)
    v = v_c + (np.arange(ny) - (ny - 1) / 2) * pix
    u = rng.uniform(-4, 4) + (np.arange(nx) - (nx - 1) / 2) * pix  # columns -> patient left
    grids["Axial T2"] = Grid(("w", "v", "u"), {"u": u, "v": v, "w": w})
    aff = np.eye(4)
    aff[:3, 0] = (0, 0, dz)
    aff[:3, 1] = (0, -pix, 0)
    aff[:3, 2] = (-pix, 0, 0)
    aff[:3, 3] = (-u[0], -v[0], w_mid - (n - 1) / 2 * dz + s_off)
    affines["Axial T2"] = aff
    return grids, affines


def _signal(
    rng, tissue, grid: Grid, a: SpineAnatomy, weighting: str, prof: MRSite, stir: bool
) -> np.ndarray:
    """Tissue codes (with sub-slices) -> int16 MR image with bias field and Rician noise."""
    col = 0 if weighting == "T1" else 1
    lut = np.zeros(len(MR_TISSUES), np.float32)
    for i, name in enumerate(MR_TISSUES):
        if name.startswith("nucleus_"):
            deg = float(a.degeneration[int(name[-1])])
            lut[i] = (0.30, 0.88 - 0.65 * deg)[col]
        else:
            lut[i] = MR_SIGNAL[name][col]
    if stir:  # fat suppressed: fat and marrow dark, fluid stays bright
        for name, value in (
            ("subcutaneous_fat", 0.06),
            ("epidural_fat", 0.08),
            ("foraminal_fat", 0.1),
            ("marrow", 0.2),
            ("posterior_bone", 0.18),
            ("abdomen", 0.25),
        ):
            lut[MR_TISSUES.index(name)] = value
    lut *= np.float32(rng.uniform(0.92, 1.08, len(lut)))
    u, v, w = grid.uvw(grid.full())
    tex = np.zeros(np.broadcast_shapes(u.shape, v.shape, w.shape), np.float32)
    for k, ph in a.texture:
        tex += np.sin(
            u * np.float32(k[0]) + v * np.float32(k[1]) + w * np.float32(k[2]) + np.float32(ph)
        )
    tex *= np.float32(0.02)  # about 4 % sd within a tissue
    img = lut[tissue] * (1 + tex)
    abdomen = tissue == MR_TISSUES.index("abdomen")
    img[abdomen] *= 1 + 5 * tex[abdomen]  # bowel, fat and vessels: about 20 % sd
    # average the sub-slices of each thick slice, then a mild in-plane blur
    n = img.shape[0] // _SUPERSAMPLE  # axis 0 is the slice axis of every series
    img = img.reshape(n, _SUPERSAMPLE, *img.shape[1:]).mean(axis=1)
    img = ndimage.gaussian_filter(img, (0, 0.6, 0.6))
    img *= 1 + np.float32(prof.bias) * np.clip((v - 20) / np.float32(100.0), -1, 1)  # spine coil
    sigma = np.float32(prof.noise)
    n1 = rng.standard_normal(img.shape, dtype=np.float32) * sigma
    n2 = rng.standard_normal(img.shape, dtype=np.float32) * sigma
    img = np.sqrt(np.square(img + n1) + np.square(n2)) * np.float32(prof.scale)
    return np.clip(np.rint(img), 0, 32767).astype(np.int16)


def _index(coords: np.ndarray, value: float, supersample: int = 1) -> float:
    """Continuous index of ``value`` along monotonic linear ``coords``."""
    step = (coords[-1] - coords[0]) / (len(coords) - 1)
    idx = (value - coords[0]) / step
    return (idx - (supersample - 1) / 2) / supersample if supersample > 1 else idx


def _points(
    study_id: int, series_ids: dict[str, int], grids: dict[str, Grid], a: SpineAnatomy
) -> list[LevelPoint]:
    """Where a reader would click for each condition/level, in RSNA's pixel terms."""
    points = []
    cv = a.sac_center_v
    for cond in CONDITIONS:
        desc = SERIES_FOR_CONDITION[cond]
        g = grids[desc]
        for lv in LEVELS:
            c = a.disc_center(lv)
            lord = float(a.lordosis(c))
            if cond == "spinal_canal_stenosis":
                u, v, w = 0.0, cv + lord, c
            elif "foraminal" in cond:
                side = 1 if cond.startswith("left") else -1
                u, v, w = side * 21.0, cv - 2.0 + lord, c + 5.0
            else:
                side = 1 if cond.startswith("left") else -1
                u, v, w = side * 12.5, cv - 2.5 + lord, c
            pos = {"u": u, "v": v, "w": w}
            slice_name = g.order[0]
            z = _index(g.coords[slice_name], pos[slice_name], _SUPERSAMPLE)
            n_slices = g.shape[0] // _SUPERSAMPLE
            instance = int(np.clip(np.rint(z), 0, n_slices - 1)) + 1
            y = _index(g.coords[g.order[1]], pos[g.order[1]])
            x = _index(g.coords[g.order[2]], pos[g.order[2]])
            points.append(
                LevelPoint(study_id, series_ids[desc], instance, cond, lv, float(x), float(y))
            )
    return points


@dataclass
class _AxialStack:
    """One angled block of axial slices: its volume and its frame in anatomy mm."""

    level: str
    volume: Volume
    center: np.ndarray  # (u, v, w) of the block's centre voxel
    axes: np.ndarray  # rows: unit (u, v, w) directions of array axes z, y, x
    steps: np.ndarray  # mm per index along z, y, x
    first_instance: int


def _axial_stacks(seed, site, prof: MRSite, a: SpineAnatomy, axial: Grid, s_off, levels):
    """Axial T2 blocks of 6 slices, one per level, each perpendicular to the spine there.

    The block is sampled from a finely rendered axis-aligned image (1 mm slices) by linear
    interpolation, three samples across each slice's thickness. A generator of its own
    keeps the rest of the study identical to the one-block study of the same seed.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(site), 0x57AC]))
    n = 6
    ny, nx = axial.shape[1], axial.shape[2]
    pix = float(axial.coords["u"][1] - axial.coords["u"][0])
    dz = float(prof.ax_slice_mm)
    u_c = float(axial.coords["u"].mean())
    stacks: list[_AxialStack] = []
    first = 1
    for level in levels:
        c = a.disc_center(level)
        slope = float(a.lordosis(c + 0.5) - a.lordosis(c - 0.5))
        normal = np.array([0.0, slope, 1.0]) / np.hypot(1.0, slope)
        down = np.array([0.0, 1.0, -slope]) / np.hypot(1.0, slope)
        axes = np.stack([normal, down, np.array([1.0, 0.0, 0.0])])
        steps = np.array([dz, pix, pix])
        center = np.array([u_c, float(a.sac_center_v + a.lordosis(c)) - 5.0, c])
        idx = np.stack(
            np.meshgrid(*(np.arange(m) - (m - 1) / 2 for m in (n, ny, nx)), indexing="ij"), axis=-1
        )
        image = np.zeros((n, ny, nx), np.float32)
        # a fine axis-aligned rendering of the box the block passes through
        extent = np.abs(axes.T * steps * (np.array([n, ny, nx]) / 2 + 1)).sum(axis=1)
        lo, hi = center - extent, center + extent
        v = np.arange(lo[1], hi[1] + pix, pix)
        w_slices = np.arange(lo[2], hi[2] + 1.0, 1.0)
        k = np.arange(w_slices.size * _SUPERSAMPLE)
        w = lo[2] + ((k + 0.5) / _SUPERSAMPLE - 0.5) * 1.0
        u = u_c + (np.arange(nx) - (nx - 1) / 2) * pix
        grid = Grid(("w", "v", "u"), {"u": u, "v": v, "w": w})
        fine = _signal(rng, a.render(grid), grid, a, "T2", prof, stir=False).astype(np.float32)
        for offset in (-dz / 3, 0.0, dz / 3):
            pos = center + (idx * steps) @ axes + offset * normal
            coords = [
                (pos[..., 2] - lo[2]) / 1.0,
                (pos[..., 1] - v[0]) / pix,
                (pos[..., 0] - u[0]) / pix,
            ]
            image += ndimage.map_coordinates(fine, coords, order=1, mode="nearest") / 3
        lps_to_ras = np.diag([-1.0, -1.0, 1.0])
        affine = np.eye(4)
        affine[:3, :3] = lps_to_ras @ (axes.T * steps)
        origin = center - ((np.array([n, ny, nx]) - 1) / 2 * steps) @ axes
        affine[:3, 3] = lps_to_ras @ origin + [0.0, 0.0, s_off]
        meta = {
            "series_description": "Axial T2",
            "stack": len(stacks) + 1,
            "stack_count": len(levels),
            "first_instance": first,
            "instance_numbers": list(range(first, first + n)),
        }
        volume = Volume(np.rint(image).astype(np.int16), affine, modality="MR", metadata=meta)
        stacks.append(_AxialStack(level, volume, center, axes, steps, first))
        first += n
    return stacks


def _on_stack(point: LevelPoint, stacks: list[_AxialStack], a: SpineAnatomy) -> LevelPoint:
    """A subarticular point moved onto its level's stack (the nearest stack if none)."""
    c = a.disc_center(point.level)
    side = 1 if point.condition.startswith("left") else -1
    world = np.array([side * 12.5, a.sac_center_v - 2.5 + float(a.lordosis(c)), c])
    stack = min(stacks, key=lambda s: abs(float((world - s.center) @ s.axes[0])))
    zyx = ((world - stack.center) @ stack.axes.T) / stack.steps
    zyx += (np.array(stack.volume.shape) - 1) / 2
    z = int(np.clip(np.rint(zyx[0]), 0, stack.volume.shape[0] - 1))
    return dataclasses.replace(
        point, instance_number=stack.first_instance + z, x=float(zyx[2]), y=float(zyx[1])
    )
