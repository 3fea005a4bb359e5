"""Stage 3, site -> solved layout: the one pipeline and everything that searches.

Owns the pipeline (:mod:`.pipeline`: site -> model -> HiGHS -> placement -> check),
the HiGHS hand-off (:mod:`.highs`), independent parts solved in parallel
(:mod:`.decompose`), the first-fit baseline and warm start (:mod:`.greedy`), turning
class counts into racks in slots (:mod:`.assign`), live progress and infeasibility
explanations (:mod:`.explain`). The maths of the model lives in ``models/``.
"""
