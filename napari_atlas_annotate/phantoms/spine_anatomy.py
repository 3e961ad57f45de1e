"""The lumbar spine of one synthetic patient, renderable onto any axis-aligned series grid.

Anatomy lives in the patient frame of :mod:`.shapes` (``u`` + = left, ``v`` + =
posterior, ``w`` + = superior). The spine follows a lordotic curve: structures are placed
in ``v' = v - lordosis(w)``, so each is a plain ellipse/ellipsoid in ``(u, v', w)``. Grades
are drawn into the anatomy as narrowing fractions (0 = wide open, 1 = obliterated):

* canal: the dural sac's antero-posterior diameter at the disc level shrinks by the
  fraction (disc bulge from the front, ligamentum flavum from behind);
* neural foramen: the foraminal fat (bright on T1) keeps ``1 - fraction`` of its
  sagittal area, the rest becomes disc/osteophyte/facet tissue (dark);
* subarticular zone (lateral recess): its CSF/fat keeps ``1 - fraction`` of its axial
  area, the rest becomes hypertrophic facet/ligament (dark).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .shapes import Grid

#: MR tissue names; the code of a tissue is its index. ``nucleus_<i>`` is the nucleus
#: pulposus of disc level i (0 = T12/L1 ... 5 = L5/S1), each with its own degeneration.
MR_TISSUES: tuple[str, ...] = (
    "air",
    "subcutaneous_fat",
    "muscle",
    "abdomen",
    "vessel",
    "cortex",
    "marrow",
    "posterior_bone",
    "annulus",
    "csf",
    "cord",
    "root",
    "epidural_fat",
    "ligament",
    "bulge",
    "foraminal_fat",
    "facet_fluid",
    "nucleus_0",
    "nucleus_1",
    "nucleus_2",
    "nucleus_3",
    "nucleus_4",
    "nucleus_5",
)
M = {name: i for i, name in enumerate(MR_TISSUES)}

#: name -> (T1, T2) relative signal (fat-bright fast spin echo).
MR_SIGNAL: dict[str, tuple[float, float]] = {
    "air": (0.0, 0.0),
    "subcutaneous_fat": (0.95, 0.80),
    "muscle": (0.33, 0.22),
    "abdomen": (0.48, 0.42),
    "vessel": (0.05, 0.05),
    "cortex": (0.04, 0.04),
    "marrow": (0.80, 0.42),
    "posterior_bone": (0.58, 0.34),
    "annulus": (0.26, 0.16),
    "csf": (0.12, 1.0),
    "cord": (0.45, 0.35),
    "root": (0.40, 0.30),
    "epidural_fat": (0.92, 0.74),
    "ligament": (0.08, 0.08),
    "bulge": (0.22, 0.14),
    "foraminal_fat": (0.93, 0.72),
    "facet_fluid": (0.12, 0.90),
}

#: Vertebrae rendered, cranial to caudal (T12 for context, S1/S2 as the sacrum).
VERTEBRAE = ("T12", "L1", "L2", "L3", "L4", "L5", "S1", "S2")
#: Disc index (0 = T12/L1) of each RSNA level.
LEVEL_DISC = {"l1_l2": 1, "l2_l3": 2, "l3_l4": 3, "l4_l5": 4, "l5_s1": 5}


@dataclass
class SpineAnatomy:
    """Geometry of one lumbar spine (all mm, patient frame).

    Attributes
    ----------
    bodies
        Per vertebra ``(w_bottom, w_top, semi_u, semi_v)``.
    discs
        Per disc (T12/L1 .. L5/S1) ``(w_bottom, w_top)``.
    degeneration
        Per disc 0 (healthy, bright nucleus) .. 1 (dark, flat).
    canal, foramen_left, foramen_right, recess_left, recess_right
        Per disc narrowing fraction 0..1 (index 0, T12/L1, is never narrowed).
    """

    bodies: list[tuple[float, float, float, float]]
    discs: list[tuple[float, float]]
    degeneration: np.ndarray
    canal: np.ndarray
    foramen_left: np.ndarray
    foramen_right: np.ndarray
    recess_left: np.ndarray
    recess_right: np.ndarray
    lordosis_mm: float
    lordosis_apex_w: float
    sac_center_v: float  # v' of the dural sac centre
    sac_semi: tuple[float, float]  # (u, v') semi-axes of the open sac
    fat_mm: float
    texture: list[tuple[np.ndarray, float]]

    def lordosis(self, w):
        """v-offset (mm, negative = anterior) of the spine axis at height ``w``."""
        x = (np.asarray(w, np.float32) - np.float32(self.lordosis_apex_w)) / np.float32(120.0)
        return np.float32(-self.lordosis_mm) * (np.float32(1.0) - x * x)

    def disc_center(self, level: str) -> float:
        lo, hi = self.discs[LEVEL_DISC[level]]
        return 0.5 * (lo + hi)

    def canal_narrowing(self, w):
        """Canal narrowing fraction at height(s) ``w``: the per-level value near each disc."""
        w = np.asarray(w, np.float32)
        out = np.zeros(w.shape, np.float32)
        for d, (lo, hi) in enumerate(self.discs):
            if self.canal[d] > 0:
                c = 0.5 * (lo + hi)
                prof = np.exp(-np.square((w - np.float32(c)) / np.float32(5.5)))
                out = np.maximum(out, np.float32(self.canal[d]) * prof)
        return out

    # -- rendering ---------------------------------------------------------------------

    def render(self, grid: Grid) -> np.ndarray:
        """Tissue codes (uint8, :data:`MR_TISSUES`) on ``grid``."""
        t = np.full(grid.shape, M["air"], np.uint8)
        r = _Renderer(grid, self, t)
        r.body()
        r.spine()
        r.canal()
        for d in range(1, len(self.discs)):
            r.level(d)
        return t


class _Renderer:
    """Paints one :class:`SpineAnatomy` into a tissue array, primitive by primitive."""

    def __init__(self, grid: Grid, a: SpineAnatomy, tissue: np.ndarray) -> None:
        self.g, self.a, self.t = grid, a, tissue

    def box(self, lo, hi):
        """``(slices, U, V', W)`` for a box given in (u, v', w); None if off-grid."""
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        lw = self.a.lordosis(np.linspace(lo[2], hi[2], 9))
        plo = [lo[0], lo[1] + float(lw.min()) - 1, lo[2]]
        phi = [hi[0], hi[1] + float(lw.max()) + 1, hi[2]]
        sl = self.g.box(plo, phi)
        if sl is None:
            return None
        u, v, w = self.g.uvw(sl)
        return sl, u, v - self.a.lordosis(w), w

    def paint(self, sl, mask, code: int) -> None:
        self.t[sl][np.broadcast_to(mask, self.t[sl].shape)] = code

    def body(self) -> None:
        g, a = self.g, self.a
        sl = g.full()
        u, v, w = g.uvw(sl)
        # the body outline does not follow the lordosis: plain patient v
        outer = np.square(u / np.float32(160.0)) + np.square((v + np.float32(35.0)) / 130.0) <= 1
        self.paint(sl, outer, M["subcutaneous_fat"])
        fu, fv = 160.0 - a.fat_mm * 1.2, 130.0 - a.fat_mm
        self.paint(sl, _inside(u, v, fu, fv), M["abdomen"])
        got = self.box([-60, -8, -400], [60, 90, 400])
        if got is not None:  # back: paraspinal muscles; around the spine: muscle
            sl, u, vp, w = got
            para = np.square((np.abs(u) - 28) / 22.0) + np.square((vp - 56) / 21.0) <= 1
            self.paint(sl, para & _inside(u, vp + a.lordosis(w), fu, fv), M["muscle"])
            near = (np.abs(u) < 34) & (vp > -2) & (vp < 50)
            self.paint(sl, near, M["muscle"])
        # psoas, widening caudally from L1
        l1_top = a.bodies[1][1]
        got = self.box([-60, -30, -400], [60, 25, l1_top])
        if got is not None:
            sl, u, vp, w = got
            rad = np.clip((l1_top - w) * 0.13 + 4, 0, 21)
            cu = 24 + (l1_top - w) * 0.1
            psoas = np.square(np.abs(u) - cu) + np.square(vp - 4) <= np.square(rad)
            self.paint(sl, psoas, M["muscle"])
        # aorta (left) and IVC (right), anterior of the bodies; iliac vessels below L4
        bif = 0.5 * sum(a.bodies[4][:2])
        for cu, cv, rad in ((12.0, -27.0, 10.0), (-16.0, -25.0, 11.0)):
            got = self.box([cu - 80, cv - 15, -400], [cu + 80, cv + 15, 400])
            if got is None:
                continue
            sl, u, vp, w = got
            above = np.square(u - cu) + np.square(vp - cv) <= rad * rad
            spread = np.maximum(bif - w, 0) * 0.45
            below = (
                np.square(np.abs(u) - (abs(cu) + spread)) + np.square(vp - cv) <= (0.7 * rad) ** 2
            )
            self.paint(sl, np.where(w >= bif, above, below), M["vessel"])

    def spine(self) -> None:
        a = self.a
        for lo, hi, su, sv in a.bodies:
            got = self.box([-su - 2, -sv - 2, lo], [su + 2, sv + 2, hi])
            if got is None:
                continue
            sl, u, vp, w = got
            e = np.square(u / su) + np.square(vp / sv)
            inside = (e <= 1) & (w >= lo) & (w <= hi)
            self.paint(sl, inside, M["cortex"])
            core = (e <= (1 - 1.6 / min(su, sv)) ** 2) & (w >= lo + 1.3) & (w <= hi - 1.3)
            self.paint(sl, core, M["marrow"])
        for d, (lo, hi) in enumerate(a.discs):
            su, sv = a.bodies[min(d + 1, len(a.bodies) - 1)][2:]
            su, sv = su + 1.0, sv + 1.0
            got = self.box([-su, -sv, lo], [su, sv, hi])
            if got is None:
                continue
            sl, u, vp, w = got
            e = np.square(u / su) + np.square(vp / sv)
            self.paint(sl, (e <= 1) & (w >= lo) & (w <= hi), M["annulus"])
            half = 0.5 * (hi - lo) * (0.75 - 0.35 * a.degeneration[d])
            c = 0.5 * (lo + hi)
            nuc = np.square(u / (0.6 * su)) + np.square((vp - 1) / (0.55 * sv)) <= 1
            self.paint(sl, nuc & (np.abs(w - c) <= half), M[f"nucleus_{d}"])
        # posterior elements of each lumbar vertebra: pedicles, lamina, spinous process
        cv = a.sac_center_v
        for lo, hi, _su, sv in a.bodies[:6]:
            h = hi - lo
            wc = 0.5 * (lo + hi)
            got = self.box([-30, sv - 2, lo - 8], [30, cv + 48, hi + 6])
            if got is None:
                continue
            sl, u, vp, w = got
            wp = wc + 0.22 * h
            ped = (np.square((np.abs(u) - 17) / 4.5) + np.square((w - wp) / 5.5) <= 1) & (
                (vp > sv - 1) & (vp < cv + 7)
            )
            lam = (np.abs(u) < 17) & (vp > cv + 8) & (vp < cv + 14) & (w > wc - 8) & (w < hi + 4)
            spin = (np.abs(u) < 4) & (vp > cv + 12) & (vp < cv + 44) & (np.abs(w - wc) < 9)
            self.paint(sl, ped | lam | spin, M["posterior_bone"])

    def canal(self) -> None:
        """Epidural space, dural sac (CSF) narrowed per level, cord and cauda roots."""
        a = self.a
        cv = a.sac_center_v
        su, sv = a.sac_semi
        top, bottom = a.bodies[0][1] + 20, a.bodies[7][1]  # the sac ends at about S2
        got = self.box([-15, cv - 11, bottom], [15, cv + 11, top])
        if got is None:
            return
        sl, u, vp, w = got
        epi = (np.square(u / 13.5) + np.square((vp - cv) / 9.5) <= 1) & (w > bottom)
        self.paint(sl, epi, M["epidural_fat"])
        sac = (np.square(u / su) + np.square((vp - cv) / sv) <= 1) & (w > bottom + 6)
        r = a.canal_narrowing(w)
        # the narrowed sac: front wall pushed back by 60 % of the loss, back wall forward 40 %
        nv = np.maximum(sv * (1 - r), np.float32(0.3))
        nc = cv + 0.2 * sv * r
        nu = su * (1 - 0.25 * r)
        open_ = np.square(u / nu) + np.square((vp - nc) / nv) <= 1
        self.paint(sl, sac & ~open_ & (vp < nc), M["bulge"])
        self.paint(sl, sac & ~open_ & (vp >= nc), M["ligament"])
        csf = sac & open_
        self.paint(sl, csf, M["csf"])
        conus = a.discs[1][0] - 8  # the cord ends at about L1/L2
        taper = np.clip((w - conus) / 25.0, 0, 1)
        cord = np.square(u / (4.2 * taper + 1e-3)) + np.square((vp - nc) / (3.6 * taper + 1e-3))
        self.paint(sl, csf & (cord <= 1), M["cord"])
        roots = np.zeros(np.broadcast_shapes(u.shape, vp.shape), bool)
        for ru, rv in ((-5, 3), (5, 3), (-2.5, 4.5), (2.5, 4.5), (-7, 0.5), (7, 0.5)):
            roots |= np.square(u - ru) + np.square(vp - (nc + rv * (1 - r))) <= 1.0
        self.paint(sl, csf & roots & (w < conus + 10), M["root"])

    def level(self, d: int) -> None:
        """Facets, lateral recesses and neural foramina at disc ``d`` (1 = L1/L2)."""
        a = self.a
        lo, hi = a.discs[d]
        c = 0.5 * (lo + hi)
        cv = a.sac_center_v
        for side, recess, foramen in (
            (1, a.recess_left, a.foramen_left),
            (-1, a.recess_right, a.foramen_right),
        ):
            got = self.box([-32, cv - 12, c - 20], [32, cv + 20, c + 24])
            if got is None:
                continue
            sl, u, vp, w = got
            us = u * side  # mm towards this side
            facet = (
                np.square((us - 16) / 6.5)
                + np.square((vp - cv - 9) / 6.5)
                + np.square((w - c - 2) / 13.0)
                <= 1
            )
            self.paint(sl, facet, M["posterior_bone"])
            self.paint(sl, facet & (np.abs(us - 16 - 0.3 * (vp - cv - 9)) < 0.8), M["facet_fluid"])
            # lateral recess: CSF/fat space keeping (1 - f) of its axial area
            f = float(recess[d])
            ru, rv, rw = 4.8, 4.2, 8.0
            zone = (
                np.square((us - 12.5) / ru)
                + np.square((vp - cv + 2.5) / rv)
                + np.square((w - c) / rw)
                <= 1
            )
            k = np.sqrt(max(1 - f, 0.02))
            open_ = (
                np.square((us - 12.5 + 0.3 * ru * (1 - k)) / (ru * k))
                + np.square((vp - cv + 2.5 - 0.3 * rv * (1 - k)) / (rv * k))
                + np.square((w - c) / rw)
                <= 1
            )
            self.paint(sl, zone, M["ligament"])
            self.paint(sl, zone & open_, M["csf"])
            root = np.square(us - 12.5 + 1.5 * (1 - k)) + np.square(vp - cv + 2.5) <= 2.4 * k + 0.6
            self.paint(sl, zone & open_ & root, M["root"])
            # neural foramen: fat keeping (1 - f) of its sagittal area around the root
            f = float(foramen[d])
            fu, fv, fw = 7.0, 6.0, 11.0
            fc_v, fc_w = cv - 2.0, c + 5.0
            hole = (
                np.square((us - 21) / fu) + np.square((vp - fc_v) / fv) + np.square((w - fc_w) / fw)
                <= 1
            )
            self.paint(sl, hole, M["bulge"])
            k = np.sqrt(max(1 - f, 0.02))
            fat = (
                np.square((us - 21) / fu)
                + np.square((vp - fc_v) / (fv * k))
                + np.square((w - fc_w - 0.35 * fw * (1 - k)) / (fw * k))
                <= 1
            )
            self.paint(sl, fat, M["foraminal_fat"])
            drg = (
                np.square((us - 21) / 5.0)
                + np.square((vp - fc_v + 0.5) / (2.6 * k + 0.4))
                + (np.square((w - c - 9 + 2 * (1 - k)) / (3.2 * k + 0.6)))
                <= 1
            )
            self.paint(sl, fat & drg, M["root"])


def _inside(u, v, semi_u: float, semi_v: float):
    """Inside the body's inner (fascial) ellipse; the body is centred 35 mm anterior."""
    return np.square(u / np.float32(semi_u)) + np.square((v + np.float32(35.0)) / semi_v) <= 1
