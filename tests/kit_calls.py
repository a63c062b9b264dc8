"""The "calls the kit" submission of the integrity test (issue 19): every exercise whose answer
the package defines is solved by calling the package.

`calls_kit_notebooks()` -> {notebook file name: notebook}: the instructor notebooks with each such
solution region replaced by a call to the kit (direct imports, module attributes, re-exports and
`checks.reference`, as a learner might write them), and every other plain code cell cut down to
its imports, definitions and literal assignments, so that the extra nbgrader pass stays cheap:
only the grade cells matter here.
"""

from __future__ import annotations

import ast
import copy
import re

from taco_lite import course

BODIES = {  # the learner's function -> a body that only calls the kit's answer
    "my_interest_mask": "from taco_lite.text.pos import interest_mask\nreturn interest_mask(tags, frozenset(pos_tags))",
    "my_idf_table": "from taco_lite.text import pos\nreturn dict(pos.idf_table(token_lists))",
    "my_token_weights": 'return checks.reference("token_weights")(tokens, tags, idf, pos_tags)',
    "my_video_global": "return TacoModel.global_video(video_tokens, video_mask)",
    "my_sentence_nce": "from taco_lite.losses import sentence_nce\n"
                       "return sentence_nce(text_global, video_global, tau=tau, symmetric=symmetric)",
    "my_token_video_scores": "import taco_lite.losses\n"
                             "return taco_lite.losses.token_video_scores(text_tokens, video_tokens, video_mask)",
    "my_token_nce": "from taco_lite.losses import token_nce\nreturn token_nce(token_scores, token_weights, tau=tau)",
    "my_pair_scores": "from taco_lite.cascade import pair_scores\n"
                      "return pair_scores(sim_global, token_scores, token_mask)",
    "my_hard_negatives": "from taco_lite.evaluate.alignment import hard_negatives  # a re-export\n"
                         "return hard_negatives(pair_scores, k)",
    "my_fusion_nce": 'return checks.reference("fusion_nce")(logits)',
    "my_retrieval_ranks": "from taco_lite.metrics import retrieval_ranks\nreturn retrieval_ranks(sim)",
    "my_ordered_times": "return localize.ordered_times(sim)",
    "softmax_over_frames": "return alignment.softmax_over_frames(scores, tau)",
    "word_frame_block": "from taco_lite.evaluate.attention import word_frame_block as kit\n"
                        "return kit(attention, text_mask, video_mask)",
}  # fmt: skip
REGION = re.compile(r"( *)### BEGIN SOLUTION\n.*?### END SOLUTION", re.S)


def _defined(source: str) -> str | None:
    """The one function a cell defines (None for none or several: notebook 05's paste cell)."""
    names = [n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)]
    return names[0] if len(names) == 1 else None


def _cheap(source: str) -> str:
    """Only the imports, definitions and literal assignments of a plain cell."""
    tree = ast.parse(source)
    kept = []
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom | ast.FunctionDef | ast.ClassDef):
            kept.append(ast.get_source_segment(source, node))
        elif isinstance(node, ast.Assign):
            try:
                ast.literal_eval(node.value)
            except ValueError:
                continue
            kept.append(ast.get_source_segment(source, node))
    return "\n".join(kept) or "pass"


def calls_kit_notebook(nb) -> tuple[object, list[str]]:
    """(the notebook with kit-calling solutions, the exercise functions replaced)."""
    nb = copy.deepcopy(nb)
    replaced = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        role = course.cell_role(cell)
        if role == "exercise" and _defined(cell.source) in BODIES:
            name = _defined(cell.source)
            body = BODIES[name]
            cell.source = REGION.sub(
                lambda m, body=body: "\n".join(m.group(1) + ln for ln in body.splitlines()),
                cell.source,
            )
            replaced.append(name)
        elif role == "plain" and "parameters" not in cell.metadata.get("tags", []):
            cell.source = _cheap(cell.source)
    return nb, replaced


def calls_kit_notebooks() -> dict[str, object]:
    """{file name: notebook} for every lesson with at least one exercise the kit answers."""
    out = {}
    for path in course.lesson_notebooks():
        nb, replaced = calls_kit_notebook(course.read_notebook(path))
        if replaced:
            out[path.name] = nb
    return out
