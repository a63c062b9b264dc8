"""The course: exercise feedback for every notebook, and nbgrader release / autograde.

Notebooks do `from taco_lite import course as checks` and call the names below.

- feedback.py: `rel_error`, `CheckReport`, `CheckFailed` and the probe helpers of every check.
- reference.py: the kit's answer to each exercise; `use_or_reference`, `call_or_reference`.
- nb00_world.py ... nb05_training.py: the `check_*` functions of one notebook each.
- assignments.py: nbgrader release / execute / autograde and the command line
  (`python -m taco_lite.course release --out build/student`).
"""

from taco_lite.course.assignments import (
    BEGIN_HIDDEN,
    BEGIN_SOLUTION,
    CODE_STUB,
    END_HIDDEN,
    END_SOLUTION,
    NOTEBOOK_GLOB,
    TEXT_STUB,
    CellError,
    GradeResult,
    autograde,
    build_parser,
    cell_role,
    error_cells,
    execute,
    execute_notebook,
    lesson_notebooks,
    main,
    notebooks_dir,
    release,
    release_notebook,
    repo_root,
    stub_mismatches,
)
from taco_lite.course.feedback import TOL, CheckFailed, CheckReport, rel_error
from taco_lite.course.nb00_world import check_gold_clip_frames, check_segments_with_noun
from taco_lite.course.nb01_pos import check_idf_table, check_interest_mask, check_token_weights
from taco_lite.course.nb02_sentence_nce import check_sentence_nce, check_video_global
from taco_lite.course.nb03_token_nce import check_token_nce, check_token_video_scores
from taco_lite.course.nb04_cascade import check_fusion_nce, check_hard_negatives, check_pair_scores
from taco_lite.course.nb05_training import check_recall_at_k, check_train_step, overfit_one_batch
from taco_lite.course.reference import (
    call_or_reference,
    loss_fns_with_fallback,
    reference,
    use_or_reference,
)

__all__ = [
    "TOL",
    "CheckFailed",
    "rel_error",
    "CheckReport",
    "reference",
    "call_or_reference",
    "use_or_reference",
    "loss_fns_with_fallback",
    "check_segments_with_noun",
    "check_gold_clip_frames",
    "check_interest_mask",
    "check_idf_table",
    "check_token_weights",
    "check_sentence_nce",
    "check_video_global",
    "check_token_video_scores",
    "check_token_nce",
    "check_pair_scores",
    "check_hard_negatives",
    "check_fusion_nce",
    "check_train_step",
    "overfit_one_batch",
    "check_recall_at_k",
    "NOTEBOOK_GLOB",
    "CODE_STUB",
    "TEXT_STUB",
    "BEGIN_SOLUTION",
    "END_SOLUTION",
    "BEGIN_HIDDEN",
    "END_HIDDEN",
    "repo_root",
    "notebooks_dir",
    "lesson_notebooks",
    "cell_role",
    "release_notebook",
    "release",
    "stub_mismatches",
    "CellError",
    "execute_notebook",
    "error_cells",
    "execute",
    "GradeResult",
    "autograde",
    "build_parser",
    "main",
]
