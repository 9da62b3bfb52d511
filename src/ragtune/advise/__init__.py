"""The advisor: RAG, fine-tuning or both, with reasons, costs and the next commands.

Pure decision rules (:mod:`.rules`) over a :class:`Profile` of the user's case, a transparent
cost model (:mod:`.costs`), measurements from a ``ragtune compare`` report (:mod:`.measured`)
and the advice in English or Chinese (:mod:`.text`).
"""

from ragtune.advise.advice import Advice, Step, advise
from ragtune.advise.costs import CostModel, Estimate, break_even, estimate
from ragtune.advise.measure import Measured, measure
from ragtune.advise.measured import Measurements, load_report
from ragtune.advise.profile import Profile
from ragtune.advise.questions import QUESTIONS, ask_missing
from ragtune.advise.rules import Reason
from ragtune.advise.text import explain, render

__all__ = ["QUESTIONS", "Advice", "CostModel", "Estimate", "Measured", "Measurements",
           "Profile", "Reason", "Step", "advise", "ask_missing", "break_even", "estimate",
           "explain", "load_report", "measure", "render"]
