"""Is a retrained grader clearly better than the active one, judged on a few studies?

The RSNA score is a weighted log loss: a study's few confident mistakes dominate it, so on
the handful of held-out studies a round has, a candidate can score lower by chance. With
the ordered level decoding the packaged grader already scores about 0.047 on 48 site-1
phantom studies, and fine-tuning it on 8-12 corrected studies gives 0.047-0.072 (ad hoc,
2026-11-23): a plain "lower wins" rule then promoted graders that were worse on 24 held-out
studies (0.042 -> 0.045 -> 0.059) in the simulated campaign. One such candidate scored
0.024 against 0.042 on its 6 validation studies and 0.062 against 0.048 on 96 held-out
ones. (Those figures are for the starter trained on one-block axials; retrained on
one-block and angled-stack studies, its round-3 candidate scores 0.064 against 0.042.)

:func:`compare_graders` therefore asks for the win to hold up when the held-out studies are
resampled (bootstrap over studies): the new grader is promoted only if it scores lower on
the studies themselves and on at least :data:`PROMOTE_WIN_SHARE` of the resamples. A
candidate four times better (0.04 vs 0.17, what fine-tuning achieved before ordered
decoding) passes on 4-6 studies; a coin flip does not.

Examples
--------
>>> verdict = compare_graders(truth, old_predictions, new_predictions)  # doctest: +SKIP
>>> verdict.new_score < verdict.old_score, verdict.win_share, verdict.clearly_better
...                                                                     # doctest: +SKIP
(True, 0.62, False)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .rsna_metric import StudyLossSums, score_from_sums, study_loss_sums

#: Share of bootstrap resamples in which the new grader must score lower to be promoted
#: (a one-sided 5 % level; the percentile bootstrap over a handful of studies is, if
#: anything, too ready to see a difference).
PROMOTE_WIN_SHARE = 0.95
#: Bootstrap resamples of the held-out studies.
RESAMPLES = 200


@dataclass(frozen=True)
class GraderComparison:
    """Old and new RSNA scores on the held-out studies and how often the new one wins."""

    old: dict[str, float]
    new: dict[str, float]
    win_share: float

    @property
    def clearly_better(self) -> bool:
        """Lower on the studies and on :data:`PROMOTE_WIN_SHARE` of the resamples."""
        new, old = self.new["score"], self.old["score"]
        if math.isnan(new):
            return False
        if math.isnan(old):
            return True
        return new < old and self.win_share >= PROMOTE_WIN_SHARE


def compare_graders(
    truth: Mapping[Any, Any],
    old_predictions: Mapping[Any, Any],
    new_predictions: Mapping[Any, Any],
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> GraderComparison:
    """Score both graders' predictions of the same studies and bootstrap the difference.

    Parameters
    ----------
    truth, old_predictions, new_predictions
        ``{study: GradeSheet}`` as :func:`.rsna_metric.rsna_score` takes them.
    resamples, seed
        Bootstrap resamples (studies drawn with replacement) and their random seed.
    """
    old_sums = study_loss_sums(truth, old_predictions)
    new_sums = study_loss_sums(truth, new_predictions)
    old = _score(old_sums, np.ones(len(old_sums.studies)))
    new = _score(new_sums, np.ones(len(new_sums.studies)))
    n = len(old_sums.studies)
    rng = np.random.default_rng(seed)
    wins = valid = 0
    for _ in range(resamples):
        # each study as often as the resample drew it: the terms are weighted means, so
        # the resample's score comes from the studies' summed losses and weights
        counts = np.bincount(rng.integers(n, size=n), minlength=n).astype(np.float64)
        a = _score(old_sums, counts)["score"]
        b = _score(new_sums, counts)["score"]
        if math.isnan(a) or math.isnan(b):
            continue
        valid += 1
        wins += b < a
    return GraderComparison(old, new, wins / valid if valid else float("nan"))


def _score(sums: StudyLossSums, counts: np.ndarray) -> dict[str, float]:
    return score_from_sums(counts @ sums.loss, counts @ sums.weight)
