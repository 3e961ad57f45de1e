"""Synthetic abdominal CT with AbdomenAtlas 1.0 organ truth.

The body is an elliptic cylinder (skin, subcutaneous fat, abdominal wall muscle) around a
cavity holding the nine labelled organs, unlabelled vessels, bowel loops, colon and lung
bases, with a lumbar/lower thoracic spine, ribs, psoas and paraspinal muscles. Organs are
deformed ellipsoids or tubes at anatomical positions with per-case jitter; the tissue map
becomes HU through per-case tables (arterial or portal venous phase), a smooth texture,
a partial-volume blur and correlated noise.

Patient frame (see :mod:`.shapes`): ``u`` + = patient left, ``v`` + = posterior, ``w`` +
= superior. The image is axial with orientation ``('S', 'P', 'L')``: array ``(z, y, x)``,
``z`` towards superior, rows towards posterior, columns towards patient left. That layout
is right-handed in DICOM's LPS, so it writes as a DICOM series unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from ..classes import ABDOMEN_ATLAS_CLASSES
from ..volume import Volume
from .ct_tissues import FREE, PHASES, T, hu_tables
from .shapes import (
    Grid,
    correlated_noise,
    ellipsoid_field,
    random_ripples,
    random_rotation,
    rotation_about,
    smooth_curve,
    smooth_noise,
    tube_segments,
)

#: AbdomenAtlas 1.0 classes; label value ``i + 1`` is ``CLASSES[i]``.
CLASSES: tuple[str, ...] = ABDOMEN_ATLAS_CLASSES
LABEL = {name: i + 1 for i, name in enumerate(CLASSES)}

DEFAULT_CT_SHAPE = (96, 160, 160)


@dataclass(frozen=True)
class CTSite:
    """How one hospital's CTs differ: field of view, coverage, noise, phase mix, habitus.

    The last three fields model what makes real multi-centre shift large (AbdomenAtlas and
    TotalSegmentator report clear Dice drops on external centres): ``unenhanced_prob`` is
    the share of scans done without contrast (aorta and IVC near 40 HU instead of
    150-300), ``fatty_liver_prob`` the share of patients with hepatic steatosis (liver
    25-45 HU darker), ``slice_mm`` the reconstructed slice thickness (extra blur along z).
    Site 0, the training site, has none of them.
    """

    fov_mm: float = 360.0
    coverage_mm: float = 260.0
    noise_sd: float = 14.0
    arterial_prob: float = 0.3
    fat_mm: float = 22.0
    body_scale: float = 1.0
    hu_offset: float = 0.0
    kernel_mm: float = 0.6
    unenhanced_prob: float = 0.0
    fatty_liver_prob: float = 0.0
    slice_mm: float = 0.0


def ct_site(site: int) -> CTSite:
    """The acquisition profile of ``site`` (0 = the training site; others deterministic).

    Other sites differ from site 0 by a clearly measurable amount in each property (e.g.
    noise 0.55x or 1.7x, field of view 0.87x or 1.15x, calibration 10-25 HU either way),
    each chosen by the site number, and the way real centres differ from a training
    centre: 30-60 % unenhanced scans, 25-50 % fatty livers, 3-5 mm slices.
    """
    if site < 0:
        raise ValueError(f"site must be >= 0, not {site}")
    if site == 0:
        return CTSite()
    r = np.random.default_rng([0x51E, int(site)])
    base = CTSite()
    return CTSite(
        fov_mm=base.fov_mm * float(r.choice([0.87, 1.15])) * r.uniform(0.98, 1.02),
        coverage_mm=base.coverage_mm * r.uniform(0.85, 1.15),
        noise_sd=base.noise_sd * float(r.choice([0.55, 1.7])) * r.uniform(0.95, 1.05),
        arterial_prob=r.uniform(0.0, 0.8),
        fat_mm=base.fat_mm * float(r.choice([0.5, 1.7])),
        body_scale=r.uniform(0.9, 1.1),
        hu_offset=float(r.choice([-1.0, 1.0])) * r.uniform(10.0, 25.0),
        kernel_mm=r.uniform(0.3, 1.1),
        unenhanced_prob=r.uniform(0.3, 0.6),
        fatty_liver_prob=r.uniform(0.25, 0.5),
        slice_mm=r.uniform(3.0, 5.0),
    )


class _Canvas:
    """Tissue and label maps being painted, with the grid that places them."""

    def __init__(self, grid: Grid) -> None:
        self.grid = grid
        self.tissue = np.zeros(grid.shape, np.uint8)
        self.label = np.zeros(grid.shape, np.uint8)

    def paint(self, sl, mask, tissue: int | np.ndarray, label: int | None, only=None) -> None:
        """Paint ``tissue`` (and ``label`` unless None) where ``mask`` and the site is free.

        ``only`` restricts painting to voxels currently of these tissue codes.
        """
        t = self.tissue[sl]
        ok = FREE[t] if only is None else np.isin(t, only)
        m = mask & ok
        if isinstance(tissue, np.ndarray):
            t[m] = tissue[m] if tissue.shape == m.shape else tissue
        else:
            t[m] = tissue
        if label is not None:
            self.label[sl][m] = label

    def ellipsoid(self, center, semi, rot, ripples, tissue, label, only=None):
        """Paint a deformed ellipsoid; returns ``(slices, field)`` (``None`` if off-grid)."""
        got = ellipsoid_field(self.grid, center, semi, rot, ripples)
        if got is not None:
            sl, f = got
            self.paint(sl, f < 1, tissue, label, only)
        return got

    def tube(self, points, radii, tissue, label, only=None) -> None:
        for sl, m in tube_segments(self.grid, points, radii):
            self.paint(sl, m, tissue, label, only)


def _jit(rng: np.random.Generator, xyz, sd) -> np.ndarray:
    return np.asarray(xyz, float) + rng.normal(0, sd, 3)


def make_ct_phantom(
    seed: int,
    shape: tuple[int, int, int] = DEFAULT_CT_SHAPE,
    site: int = 0,
    spacing: tuple[float, float, float] | None = None,
) -> tuple[Volume, Volume, dict[str, Any]]:
    """Make one synthetic abdominal CT with its organ label map.

    Parameters
    ----------
    seed
        Case seed: the same ``(seed, site, shape, spacing)`` gives byte-identical arrays.
    shape
        Array shape ``(z, y, x)``; up to about 300x512x512 (float32 work, organs painted in
        their bounding boxes: roughly 1.5 GB peak at that size).
    site
        Acquisition site (0 = training site); see :func:`ct_site`.
    spacing
        Voxel size ``(z, y, x)`` in mm. By default the in-plane field of view fits the
        patient (360 mm or so) and about 260 mm are covered cranio-caudally.

    Returns
    -------
    image : Volume
        int16 HU, orientation ``('S', 'P', 'L')``, modality ``"CT"``.
    label : Volume
        uint8 on the same grid; value ``i + 1`` is ``CLASSES[i]``, 0 background.
    info : dict
        ``phase``, ``series_description``, ``spacing``, ``noise_sd``, ``classes``,
        ``volumes_ml`` per class, ``site`` profile and habitus numbers.

    Examples
    --------
    >>> image, label, info = make_ct_phantom(0, shape=(24, 48, 48))
    >>> image.array.dtype, int(label.array.max()) <= 9, image.orientation
    (dtype('int16'), True, ('S', 'P', 'L'))
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 8:
        raise ValueError(f"shape must be 3 sizes >= 8 (z, y, x), not {shape}")
    prof = ct_site(site)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(site), 0xC7]))

    phase = PHASES[0] if rng.random() < prof.arterial_prob else PHASES[1]
    # Protocol and population draws come from their own stream so that the main one (and
    # with it every site-0 phantom) is unchanged by them.
    side = np.random.default_rng(np.random.SeedSequence([int(seed), int(site), 0x5173]))
    if side.random() < prof.unenhanced_prob:
        phase = PHASES[2]
    fatty_liver = bool(side.random() < prof.fatty_liver_prob)
    scale = prof.body_scale * rng.uniform(0.93, 1.07)
    fat = prof.fat_mm * float(rng.lognormal(0.0, 0.35))
    bu, bv = 135.0 * scale * rng.uniform(0.94, 1.06), 100.0 * scale * rng.uniform(0.94, 1.06)
    vc = 8.0  # body centre: the spine sits posterior of the middle
    if spacing is None:
        fov = max(prof.fov_mm * rng.uniform(0.97, 1.03), 2 * (bu + 1.1 * fat) + 20.0)
        pix = fov / max(shape[1], shape[2])
        sz = prof.coverage_mm * rng.uniform(0.95, 1.05) / shape[0]
        spacing = (sz, pix, pix)
    sz, sy, sx = (float(s) for s in spacing)
    w_top = 170.0 + rng.uniform(-10, 10)
    coords = {
        "w": w_top - (shape[0] - 1 - np.arange(shape[0])) * sz,
        "v": (np.arange(shape[1]) - (shape[1] - 1) / 2) * sy + vc + rng.uniform(-8, 8),
        "u": (np.arange(shape[2]) - (shape[2] - 1) / 2) * sx + rng.uniform(-10, 10),
    }
    grid = Grid(("w", "v", "u"), coords)
    canvas = _Canvas(grid)

    _paint_body(canvas, rng, bu, bv, vc, fat)
    _paint_spine(canvas, rng)
    _paint_lungs(canvas, rng, bu, bv, vc)
    _paint_muscles(canvas, rng)
    _paint_organs(canvas, rng, scale)
    _paint_bowel(canvas, rng, phase)
    _drop_fragments(canvas.label)

    mean, amp = hu_tables(rng, phase, prof.hu_offset)
    if fatty_liver:  # steatosis: the parenchyma darkens, the vessels in it do not
        mean[T["liver"]] -= side.uniform(25.0, 45.0)
    noise_sd = prof.noise_sd * rng.uniform(0.85, 1.15)
    hu = _render_hu(
        canvas.tissue, mean, amp, (sz, sy, sx), prof.kernel_mm, noise_sd, rng, prof.slice_mm
    )
    np.clip(np.rint(hu, out=hu), -1024, 3071, out=hu)
    image = hu.astype(np.int16)
    del hu

    s_off = -200.0 + rng.uniform(-50, 50)  # table position: patient z in scanner mm
    affine = np.eye(4)
    affine[:3, 0] = (0, 0, sz)
    affine[:3, 1] = (0, -sy, 0)
    affine[:3, 2] = (-sx, 0, 0)
    affine[:3, 3] = (-coords["u"][0], -coords["v"][0], coords["w"][0] + s_off)

    description = f"Abdomen CT {phase}"
    counts = np.bincount(canvas.label.ravel(), minlength=len(CLASSES) + 1)
    voxel_ml = sz * sy * sx / 1000.0
    info = {
        "seed": int(seed),
        "site": int(site),
        "phase": phase,
        "fatty_liver": fatty_liver,
        "series_description": description,
        "spacing": [sz, sy, sx],
        "shape": list(shape),
        "noise_sd": float(noise_sd),
        "fat_mm": float(fat),
        "body_semi_axes_mm": [float(bu), float(bv)],
        "classes": list(CLASSES),
        "volumes_ml": {c: float(counts[i + 1] * voxel_ml) for i, c in enumerate(CLASSES)},
        "site_profile": asdict(prof),
    }
    meta = {"series_description": description, "phase": phase}
    img = Volume(image, affine, modality="CT", metadata=dict(meta))
    lab = Volume(canvas.label, affine.copy(), modality="", metadata={"classes": list(CLASSES)})
    return img, lab, info


def _paint_body(c: _Canvas, rng, bu, bv, vc, fat) -> None:
    """Skin, subcutaneous fat, abdominal wall and the cavity (2D, same on every slice)."""
    u = c.grid.coords["u"][None, :].astype(np.float64)
    v = c.grid.coords["v"][:, None].astype(np.float64) - vc
    theta = np.arctan2(v, u)
    rho = np.sqrt((u / bu) ** 2 + (v / bv) ** 2)
    radius = bu * bv / np.sqrt((bv * np.cos(theta)) ** 2 + (bu * np.sin(theta)) ** 2)
    depth = (rho - 1.0) * radius  # mm outside the muscle wall's outer surface
    # thicker fat anteriorly (v < 0) and at the flanks, thinner over the back
    fat_t = fat * (1.0 - 0.35 * np.sin(theta)) * (1 + 0.1 * np.cos(3 * theta + rng.uniform(0, 6)))
    wall = 11.0 + rng.uniform(-2, 3)
    layers = np.full(depth.shape, T["air"], np.uint8)
    layers[depth <= fat_t + 2.5] = T["skin"]
    layers[depth <= fat_t] = T["subcutaneous_fat"]
    layers[depth <= 0] = T["wall_muscle"]
    layers[depth <= -wall] = T["visceral_fat"]
    c.tissue[:] = layers[None]


def _paint_spine(c: _Canvas, rng) -> None:
    """Vertebral bodies and discs (36 mm period), posterior arch, canal, ribs above L1."""
    u = c.grid.coords["u"][None, :]
    v = c.grid.coords["v"][:, None]
    bc = 48.0 + rng.uniform(-4, 4)  # vertebral body centre (v)
    au, av = 21.0 + rng.uniform(-2, 2), 16.0 + rng.uniform(-1.5, 1.5)
    body_r = np.sqrt((u / au) ** 2 + ((v - bc) / av) ** 2)
    cc = bc + av + 11.0  # canal centre
    canal = (u / 10.5) ** 2 + ((v - cc) / 8.5) ** 2 <= 1
    arch = ((u / 17.0) ** 2 + ((v - cc) / 14.0) ** 2 <= 1) & (v > cc - 4) & ~canal
    pedicle = (np.abs(u) > 8) & (np.abs(u) < 17) & (v > bc + av - 2) & (v < cc + 2)
    spinous = (np.abs(u) < 3.5) & (v > cc + 10) & (v < cc + 42)
    transverse = (np.abs(u) > 14) & (np.abs(u) < 38) & (np.abs(v - cc + 2) < 3)
    para = ((np.abs(u) - 36.0) / 24.0) ** 2 + ((v - cc - 22.0) / 20.0) ** 2 <= 1
    period = 36.0 + rng.uniform(-2, 2)
    disc_h = 9.0 + rng.uniform(-1, 1)
    phase0 = rng.uniform(0, period)
    lam = float(rng.uniform(0, 6.3))
    w = c.grid.coords["w"]
    for z, wz in enumerate(w):
        t = c.tissue[z]
        inner = t == T["visceral_fat"]
        t[para & inner] = T["paraspinal"]
        pos = (wz - phase0) % period  # 0 = disc centre
        d = min(pos, period - pos)
        if d < disc_h / 2:
            t[body_r <= 1.02] = T["disc"]
            facet = (np.abs(np.abs(u) - 15) < 5) & (np.abs(v - cc - 6) < 5)
            t[facet] = T["cortical_bone"]
        else:
            t[body_r <= 1] = T["cortical_bone"]
            t[body_r <= 0.9] = T["cancellous_bone"]
            upper = pos > period / 2  # posterior elements: upper part of each vertebra
            t[arch | pedicle] = T["cortical_bone"]
            if upper and d > disc_h:
                t[spinous] = T["cortical_bone"]
            if abs(pos - 0.6 * period) < 2.5:
                t[transverse] = T["cancellous_bone"]
        t[canal] = T["csf"]
        if wz > 40:  # ribs: oblique bony bands in the wall, lateral and posterior only
            wall = t == T["wall_muscle"]
            theta = np.arctan2(v - 8.0, u)
            band = np.cos(2 * np.pi * (wz + 14.0 * np.sin(theta) + lam) / 30.0) > 0.72
            t[wall & band & (np.sin(theta) > -0.5)] = T["cancellous_bone"]


def _paint_lungs(c: _Canvas, rng, bu, bv, vc) -> None:
    """Lung bases above a domed diaphragm (lower posteriorly), mediastinum in the middle."""
    u = c.grid.coords["u"][None, :]
    v = c.grid.coords["v"][:, None] - vc
    dome = 128.0 + rng.uniform(-10, 10) + 26.0 * (1 - (u / bu) ** 2) - 22.0 * (v / bv)
    med = (np.abs(u) < 38) & (v < 25)
    heart_c = np.array([18.0, -30.0, 190.0]) + rng.normal(0, 5, 3)
    for z, wz in enumerate(c.grid.coords["w"]):
        t = c.tissue[z]
        above = (wz > dome) & (t == T["visceral_fat"])
        t[above] = T["lung"]
        dz = (wz - heart_c[2]) / 45.0
        heart = ((u - heart_c[0]) / 60.0) ** 2 + ((v - heart_c[1]) / 48.0) ** 2 + dz**2 <= 1
        t[above & (med | heart)] = T["mediastinum"]


def _paint_muscles(c: _Canvas, rng) -> None:
    for side in (-1, 1):
        pts = np.array([[side * 24, 42, 40], [side * 34, 42, -20], [side * 50, 36, -120]])
        path = smooth_curve(rng, pts, 2.0, 8)
        radii = np.interp(np.linspace(0, 1, len(path)), [0, 0.5, 1], [4, 16, 26])
        c.tube(path, radii * rng.uniform(0.85, 1.15), T["psoas"], None)


def _paint_organs(c: _Canvas, rng, scale: float) -> None:
    """The nine AbdomenAtlas organs (in precedence order) and unlabelled vessels."""
    s = scale ** (1 / 3) * np.asarray([1.0, 1.0, 1.0])
    L = LABEL

    # liver: big right lobe + left lobe crossing the midline anteriorly
    size = rng.uniform(0.9, 1.1)
    rl = c.ellipsoid(
        _jit(rng, [-62, 2, 72], 6),
        s * size * [58, 78, 72],
        random_rotation(rng, 8),
        random_ripples(rng, 80, amp=0.15),
        T["liver"],
        L["liver"],
    )
    c.ellipsoid(
        _jit(rng, [8, -42, 92], 6),
        s * size * [55, 30, 40],
        rotation_about("v", rng.uniform(-15, 5)),
        random_ripples(rng, 50),
        T["liver"],
        L["liver"],
    )
    if rl is not None:  # intrahepatic vessels (part of the liver label)
        hilum = np.array([-32.0, 0.0, 62.0])
        for _ in range(5):
            end = hilum + rng.normal(0, 1, 3) * [35, 35, 30] + [-20, 0, 25]
            pts = smooth_curve(rng, np.stack([hilum, (hilum + end) / 2, end]), 6, 10)
            c.tube(pts, np.linspace(5, 1.5, len(pts)), T["liver_vessel"], None, only=[T["liver"]])

    # spleen: left, posterior, high
    c.ellipsoid(
        _jit(rng, [82, 48, 88], 5),
        s * rng.uniform(0.8, 1.2) * [22, 48, 45],
        rotation_about("w", rng.uniform(20, 40)),
        random_ripples(rng, 45),
        T["spleen"],
        L["spleen"],
    )

    # stomach: fundus, body, antrum (J shape, left upper quadrant)
    gas_level = rng.uniform(-55, 0)  # supine: gas rises anteriorly (small v)
    parts = [
        ([50, 8, 108], [38, 36, 36]),
        ([44, -30, 76], [34, 30, 42]),
        ([10, -50, 52], [32, 22, 22]),
    ]
    for center, semi in parts:
        got = ellipsoid_field(
            c.grid,
            _jit(rng, center, 4),
            s * rng.uniform(0.85, 1.15) * semi,
            random_rotation(rng, 10),
            random_ripples(rng, 40, amp=0.1),
        )
        if got is None:
            continue
        sl, f = got
        _, vv, _ = c.grid.uvw(sl)
        lumen = np.where(vv < gas_level, np.uint8(T["gas"]), np.uint8(T["stomach_fluid"]))
        content = np.where(f > 0.72, np.uint8(T["stomach_wall"]), lumen)
        c.paint(sl, f < 1, content, L["stomach"])

    # kidneys: cortex, medulla, pelvis opening medially; left higher than right
    for name, side, w0 in (("kidney_left", 1, 8), ("kidney_right", -1, -8)):
        center = _jit(rng, [side * 72, 52, w0], 4)
        rot = rotation_about("v", side * rng.uniform(8, 18)) @ rotation_about("w", side * 25)
        got = ellipsoid_field(
            c.grid,
            center,
            s * rng.uniform(0.88, 1.12) * [27, 22, 54],
            rot,
            random_ripples(rng, 50, amp=0.08),
        )
        if got is None:
            continue
        sl, f = got
        uu, _, _ = c.grid.uvw(sl)
        medial = (uu - np.float32(center[0])) * np.float32(-side)  # mm towards the midline
        tissue = np.full(f.shape, T["kidney_cortex"], np.uint8)
        tissue[f < 0.45] = T["kidney_medulla"]
        tissue[(f < 0.3) & (medial > 4)] = T["kidney_pelvis"]
        c.paint(sl, f < 1, tissue, L[name])

    # pancreas: head by the duodenum, body across the vessels, tail to the splenic hilum
    anchors = np.array([[-38, -12, 22], [-12, -24, 34], [20, -22, 40], [48, 0, 48], [68, 24, 56]])
    pts = smooth_curve(rng, anchors * [1, 1, 1], 3.0, 16)
    radii = np.interp(np.linspace(0, 1, len(pts)), [0, 0.25, 0.6, 1], [15, 10, 10, 8])
    radii = radii * rng.uniform(0.85, 1.15) * (1 + 0.12 * np.sin(np.arange(len(pts)) * 1.7))
    c.tube(pts, radii, T["pancreas"], L["pancreas"])

    # gall bladder: pear under the liver, long axis pointing antero-inferiorly
    rot = rotation_about("u", rng.uniform(25, 45))
    c.ellipsoid(
        _jit(rng, [-48, -42, 30], 4),
        s * rng.uniform(0.75, 1.25) * [15, 15, 34],
        rot,
        random_ripples(rng, 30, amp=0.08),
        T["bile"],
        L["gall_bladder"],
    )

    # unlabelled veins: splenic vein behind the pancreas, portal vein to the hilum,
    # renal veins (left crosses in front of the aorta)
    spl = smooth_curve(rng, np.array([[68, 20, 56], [30, -6, 42], [-6, -10, 38]]), 2, 10)
    c.tube(spl, np.full(len(spl), 4.5), T["vein"], 0)
    portal = smooth_curve(rng, np.array([[-6, -10, 38], [-20, -6, 50], [-34, 0, 64]]), 2, 8)
    c.tube(portal, np.full(len(portal), 7.0), T["vein"], 0)
    for side in (-1, 1):
        rv = np.array([[side * 55, 45, side * 4 + 4], [side * 25, 22, 6], [-22, 22, 8]])
        c.tube(rv, [4.5, 5, 5], T["vein"], 0)

    # postcava (IVC): right of the aorta, intrahepatic part at the top
    ivc = smooth_curve(
        rng, np.array([[-22, 24, -90], [-24, 22, 0], [-28, 14, 80], [-22, 10, 160]]), 3, 20
    )
    c.tube(ivc, rng.uniform(9, 12) * np.ones(len(ivc)), T["postcava"], L["postcava"])

    # aorta: left-anterior of the vertebral body, tapering, bifurcates at about L4
    a0 = np.array([[14, 6, 185], [16, 16, 80], [15, 20, 0], [12, 22, -75]])
    aorta = smooth_curve(rng, a0, 2.5, 24)
    ar = np.linspace(rng.uniform(12, 14), rng.uniform(8, 10), len(aorta))
    c.tube(aorta, ar, T["aorta"], L["aorta"])
    bif = aorta[-1]
    for side in (-1, 1):  # iliac arteries and veins, unlabelled
        il = np.array([bif, bif + [side * 25, -2, -40], bif + [side * 55, 2, -90]])
        c.tube(il, [7, 6, 5], T["artery"], 0)
        c.tube(il + [side * 4, 10, 0], [8, 7, 6], T["vein"], 0)
    # coeliac trunk and SMA: anterior branches, unlabelled
    for w0, length in ((70, 25), (55, 110)):
        start = aorta[np.argmin(np.abs(aorta[:, 2] - w0))]
        sma = np.array([start, start + [0, -20, -5], start + [-5, -28, -length]])
        c.tube(smooth_curve(rng, sma, 1.5, 8), np.full(8, 3.5), T["artery"], 0)


def _paint_bowel(c: _Canvas, rng, phase: str) -> None:
    """Colon frame and small-bowel loops in the free fat (never over organs)."""
    oral_contrast = rng.random() < 0.25
    only = [T["visceral_fat"], T["psoas"]]
    colon = np.array(
        [
            [-80, -15, -95],
            [-92, 5, -20],
            [-88, -10, 35],
            [-60, -60, 40],
            [0, -78, 25],
            [60, -55, 55],
            [92, 5, 60],
            [98, 15, -20],
            [70, -10, -80],
            [30, -30, -115],
        ]
    )
    pts = smooth_curve(rng, colon, 6, 40)
    radius = rng.uniform(17, 24)
    c.tube(pts, np.full(len(pts), radius), T["bowel_wall"], 0, only=only)
    c.tube(pts, np.full(len(pts), radius - 3), T["stool"], 0, only=[T["bowel_wall"]])
    for i in rng.choice(len(pts), 8, replace=False):  # gas pockets in the stool
        c.ellipsoid(
            pts[i] + rng.normal(0, 5, 3),
            rng.uniform(6, radius - 4, 3),
            None,
            random_ripples(rng, 15),
            T["gas"],
            None,
            only=[T["stool"]],
        )
    contents = [T["bowel_fluid"], T["gas"], T["bowel_fluid"]]
    if oral_contrast:
        contents.append(T["bowel_contrast"])
    for _ in range(70):
        p0 = rng.uniform([-90, -85, -120], [90, 30, 45])
        d = rng.normal(size=3)
        d /= np.linalg.norm(d)
        pts = np.stack([p0, p0 + d * rng.uniform(15, 45), p0 + d * 40 + rng.normal(0, 15, 3)])
        r = rng.uniform(8, 14)
        c.tube(pts, np.full(3, r), T["bowel_wall"], 0, only=only)
        c.tube(pts, np.full(3, r - 2.5), int(rng.choice(contents)), 0, only=[T["bowel_wall"]])


def _drop_fragments(label: np.ndarray, keep: float = 0.02) -> None:
    """Unlabel specks cut off an organ by later painting (vessels, other organs).

    Components smaller than ``keep`` times the organ's largest one become background;
    only each organ's bounding box is searched, so this stays cheap at full size.
    """
    for value, box in enumerate(ndimage.find_objects(label), start=1):
        if box is None:
            continue
        sub = label[box]
        comp, n = ndimage.label(sub == value)
        if n <= 1:
            continue
        sizes = np.bincount(comp.ravel())
        sizes[0] = 0
        small = np.nonzero(sizes < keep * sizes.max())[0]
        sub[np.isin(comp, small[small > 0])] = 0


def _render_hu(tissue, mean, amp, spacing, kernel_mm, noise_sd, rng, slice_mm=0.0) -> np.ndarray:
    """Tissue map -> HU: table means + smooth texture, partial-volume blur, correlated noise.

    ``slice_mm`` > 0 adds the slice profile of a thick reconstruction along z (FWHM).
    """
    shape = tissue.shape
    cells = [max(3, int(round(n * s / 14.0))) for n, s in zip(shape, spacing, strict=True)]
    hu = smooth_noise(rng, shape, cells)
    for z in range(shape[0]):  # slice-wise: no full-size temporaries for the lookups
        t = tissue[z]
        hu[z] *= amp[t]
        hu[z] += mean[t]
    # partial volume: each voxel averages its footprint plus the scanner's blur
    sigma = [float(np.sqrt(0.4**2 + (kernel_mm / s) ** 2)) for s in spacing]
    if slice_mm > 0:
        sigma[0] = float(np.hypot(sigma[0], slice_mm / 2.355 / spacing[0]))
    hu = ndimage.gaussian_filter(hu, sigma, output=np.float32, mode="nearest", truncate=3.0)
    noise_sigma = [0.4, *[float(np.clip(0.9 / s + 0.4, 0.5, 1.5)) for s in spacing[1:]]]
    hu += correlated_noise(rng, shape, noise_sigma, noise_sd)
    return hu
