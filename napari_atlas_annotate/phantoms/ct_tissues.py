"""Tissue codes of the CT phantom and their attenuation (HU) per contrast phase.

The phantom first paints a *tissue* map (finer than the organ labels: a kidney has cortex,
medulla and pelvis; the stomach wall, fluid and gas), then turns it into HU with these
tables. Values overlap on purpose, as in real CT: liver, spleen, pancreas, bowel wall and
veins share 90-170 HU, aorta in the arterial phase meets cancellous bone, bile meets bowel
fluid, so no single intensity window separates an organ.
"""

from __future__ import annotations

import numpy as np

#: Tissue names; the code of a tissue is its index.
TISSUES: tuple[str, ...] = (
    "air",
    "skin",
    "subcutaneous_fat",
    "wall_muscle",
    "visceral_fat",
    "lung",
    "psoas",
    "paraspinal",
    "cortical_bone",
    "cancellous_bone",
    "disc",
    "csf",
    "liver",
    "liver_vessel",
    "spleen",
    "kidney_cortex",
    "kidney_medulla",
    "kidney_pelvis",
    "pancreas",
    "stomach_wall",
    "stomach_fluid",
    "gas",
    "bile",
    "aorta",
    "artery",
    "postcava",
    "vein",
    "bowel_wall",
    "bowel_fluid",
    "bowel_contrast",
    "stool",
    "mediastinum",
)
T = {name: i for i, name in enumerate(TISSUES)}

#: Tissues an organ (or a bowel loop) may be painted over.
FREE = np.zeros(len(TISSUES), bool)
FREE[[T["visceral_fat"], T["lung"], T["psoas"], T["mediastinum"]]] = True
FREE[T["liver"] : T["stool"] + 1] = True

#: name -> (mean HU, case-to-case sd, within-tissue texture amplitude); phase independent.
_COMMON = {
    "air": (-1000, 0, 0),
    "skin": (30, 5, 5),
    "subcutaneous_fat": (-102, 8, 8),
    "wall_muscle": (52, 5, 6),
    "visceral_fat": (-95, 8, 12),
    "lung": (-850, 30, 25),
    "psoas": (55, 5, 6),
    "paraspinal": (50, 5, 7),
    "cortical_bone": (650, 40, 40),
    "cancellous_bone": (260, 40, 45),
    "disc": (85, 8, 6),
    "csf": (12, 3, 3),
    "kidney_pelvis": (14, 6, 4),
    "stomach_fluid": (18, 10, 8),
    "gas": (-960, 15, 15),
    "bile": (12, 6, 4),
    "bowel_fluid": (20, 10, 10),
    "bowel_contrast": (290, 40, 35),
    "stool": (-40, 20, 70),
    "mediastinum": (42, 6, 8),
}

#: Enhancing tissues: name -> {phase: (mean HU, sd, texture)}.
_ENHANCING = {
    "liver": {"arterial": (78, 8, 7), "portal venous": (112, 10, 7)},
    "liver_vessel": {"arterial": (85, 10, 8), "portal venous": (168, 15, 8)},
    "spleen": {"arterial": (125, 15, 28), "portal venous": (120, 10, 8)},
    "kidney_cortex": {"arterial": (205, 25, 15), "portal venous": (175, 15, 10)},
    "kidney_medulla": {"arterial": (95, 10, 12), "portal venous": (160, 15, 10)},
    "pancreas": {"arterial": (125, 15, 14), "portal venous": (102, 10, 14)},
    "stomach_wall": {"arterial": (108, 10, 10), "portal venous": (96, 10, 10)},
    "aorta": {"arterial": (290, 40, 6), "portal venous": (170, 20, 5)},
    "artery": {"arterial": (270, 40, 8), "portal venous": (165, 20, 8)},
    "postcava": {"arterial": (85, 12, 18), "portal venous": (145, 15, 8)},
    "vein": {"arterial": (140, 20, 10), "portal venous": (170, 15, 8)},
    "bowel_wall": {"arterial": (110, 12, 12), "portal venous": (100, 10, 12)},
}

#: Unenhanced scan (renal colic, follow-up and many outside-hospital protocols): blood,
#: liver, spleen, pancreas, kidney and bowel wall all sit at 30-60 HU, so the vessels lose
#: the contrast that an enhanced training site relies on.
_NON_CONTRAST = {
    "liver": (58, 5, 6),
    "liver_vessel": (42, 5, 5),
    "spleen": (47, 4, 6),
    "kidney_cortex": (33, 4, 5),
    "kidney_medulla": (30, 4, 5),
    "pancreas": (40, 6, 10),
    "stomach_wall": (38, 5, 8),
    "aorta": (42, 5, 4),
    "artery": (42, 5, 5),
    "postcava": (40, 5, 5),
    "vein": (40, 5, 5),
    "bowel_wall": (36, 5, 8),
}
for _name, _row in _NON_CONTRAST.items():
    _ENHANCING[_name]["non-contrast"] = _row

#: Contrast phases; the training site (0) scans only the first two (see ``ct_site``).
PHASES: tuple[str, ...] = ("arterial", "portal venous", "non-contrast")


def hu_tables(
    rng: np.random.Generator, phase: str, offset: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Per-case HU lookup tables ``(mean, texture amplitude)``, float32, indexed by tissue.

    Each case draws its own tissue means around the phase's values (patients, bolus timing
    and scanners differ); ``offset`` shifts every tissue but air (a calibration difference).
    """
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}, not {phase!r}")
    mean = np.zeros(len(TISSUES), np.float32)
    amp = np.zeros(len(TISSUES), np.float32)
    for name in TISSUES:
        mu, sd, tex = _COMMON[name] if name in _COMMON else _ENHANCING[name][phase]
        draw = rng.normal(mu, sd) if sd else mu
        mean[T[name]] = draw + (offset if name != "air" else 0.0)
        amp[T[name]] = tex
    return mean, amp
