"""The course: exercise feedback for every notebook, and nbgrader release / autograde.

Notebooks do `from taco_lite import course as checks` and call the names below.

- feedback.py: `rel_error`, `CheckReport`, `CheckFailed` and the probe helpers of every check.
- references.py: the kit's answer to each exercise; `use_or_reference`, `call_or_reference`.
- nb00_world.py ... nb07_alignment.py: the `check_*` functions of one notebook each.
- integrity.py: `KIT_ANSWERS` (exercise -> the kit's answer) and `kit_hidden`, which hides that
  answer while a check runs the learner's function.
- notebooks.py: the lesson notebooks as files (read, write, each cell's nbgrader role).
- student.py, runner.py, grading.py: student versions, executed copies, nbgrader autograde.
- cli.py: the command line, `python -m taco_lite.course release --out build/student`
  (also `execute [--times]`, `autograde` with a per-cell breakdown, `feedback`).
"""

from taco_lite.course.cli import build_parser, main
from taco_lite.course.feedback import TOL, CheckFailed, CheckReport, rel_error
from taco_lite.course.grading import GradeResult, autograde, feedback
from taco_lite.course.integrity import KIT_ANSWERS, KitAnswerUsed, kit_hidden, run_as_student
from taco_lite.course.nb00_world import check_gold_clip_frames, check_segments_with_noun
from taco_lite.course.nb01_pos import check_idf_table, check_interest_mask, check_token_weights
from taco_lite.course.nb02_sentence_nce import check_sentence_nce, check_video_global
from taco_lite.course.nb03_token_nce import check_token_nce, check_token_video_scores
from taco_lite.course.nb04_cascade import check_fusion_nce, check_hard_negatives, check_pair_scores
from taco_lite.course.nb05_training import (
    check_device_step,
    check_recall_at_k,
    check_train_step,
    overfit_one_batch,
)
from taco_lite.course.nb06_downstream import check_retrieval_ranks
from taco_lite.course.nb07_alignment import check_softmax_over_frames, check_word_frame_block
from taco_lite.course.notebooks import (
    BEGIN_HIDDEN,
    BEGIN_SOLUTION,
    CODE_STUB,
    END_HIDDEN,
    END_SOLUTION,
    NOTEBOOK_GLOB,
    TEXT_STUB,
    cell_role,
    lesson_notebooks,
    notebooks_dir,
    read_notebook,
    repo_root,
    write_notebook,
)
from taco_lite.course.references import (
    call_or_reference,
    loss_fns_with_fallback,
    reference,
    use_or_reference,
)
from taco_lite.course.runner import CellError, error_cells, execute, execute_notebook
from taco_lite.course.student import release, release_notebook, stub_mismatches

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
    "check_device_step",
    "check_retrieval_ranks",
    "check_softmax_over_frames",
    "check_word_frame_block",
    "KIT_ANSWERS",
    "KitAnswerUsed",
    "kit_hidden",
    "run_as_student",
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
    "read_notebook",
    "write_notebook",
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
    "feedback",
    "build_parser",
    "main",
]
