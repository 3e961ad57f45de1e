"""Review for annotation leads (GUI-free): agreement metrics, consensus, adjudication.

* :mod:`.metrics`: Dice / HD95 (mm) / volume difference (ml) per class and annotator pair;
  grade agreement (weighted kappa, confusion matrices).
* :mod:`.consensus`: majority vote, STAPLE, disagreement map.
* :mod:`.consensus_files`: the consensus written for another tool, and the edited file
  read back as the lead's paint.
* :mod:`.kappa`: weighted Cohen's kappa in numpy.
* :mod:`.cases`: which versions are compared, per-case review, ranking by disagreement.
* :mod:`.grade_cells`: a lumbar case's 25 cells, who said what, disputed cells first.
* :mod:`.adjudication`: finalize / reopen with versions and audit records.
* :mod:`.report`: the HTML report with inline SVG plots.
"""

from .adjudication import FinalizeOutcome, current_final, finalize, finalize_agreed, reopen
from .cases import CaseReview, review_case, review_project
from .consensus import disagreement_map, majority_vote, staple
from .kappa import cohen_kappa, confusion_matrix
from .metrics import grade_agreement, mask_agreement

__all__ = [
    "CaseReview",
    "FinalizeOutcome",
    "cohen_kappa",
    "confusion_matrix",
    "current_final",
    "disagreement_map",
    "finalize",
    "finalize_agreed",
    "grade_agreement",
    "majority_vote",
    "mask_agreement",
    "reopen",
    "review_case",
    "review_project",
    "staple",
]
