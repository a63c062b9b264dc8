"""Tokens of interest and their weights: spaCy UPOS tags, idf, and caption checks.

TACo's token-level loss L2 (paper Eq. 4, docs/method.md §3) only looks at *tokens of interest*,
words whose part of speech is in `pos_tags`, and weighs each by its idf. The code lives in
three modules; this one gathers their names, so `from taco_lite.text import pos` and
`pos.tag_captions(...)` keep working:

- `text.tagging`: the spaCy pipeline (`load_nlp`) and cached tagging (`tag_captions`);
- `text.interest`: tokens of interest (`parse_pos_tags`, `interest_mask`) and idf weights
  (`idf_table`, `token_weights`, Eq. 4's w[i, p]);
- `text.captions`: checks of a caption a student types (`check_caption`).

To replace a function in a test (monkeypatch), patch it in the module that defines it, for
example `taco_lite.text.tagging.load_nlp`: patching the name here does not reach the callers.

Run `python -m taco_lite.text.pos --bench` to time tagging with and without the caches.
"""

from taco_lite.text.bench import bench
from taco_lite.text.captions import CaptionError, CaptionReport, check_caption
from taco_lite.text.interest import (
    DEFAULT_POS_TAGS,
    IDF_FLOOR,
    POS_PRESETS,
    IdfTable,
    idf_table,
    interest_mask,
    parse_pos_tags,
    token_weights,
)
from taco_lite.text.tagging import (
    UPOS,
    clear_tag_cache,
    load_nlp,
    pipeline_key,
    tag_captions,
    upos_id,
)

__all__ = [
    "UPOS",
    "upos_id",
    "load_nlp",
    "pipeline_key",
    "tag_captions",
    "clear_tag_cache",
    "POS_PRESETS",
    "DEFAULT_POS_TAGS",
    "IDF_FLOOR",
    "parse_pos_tags",
    "interest_mask",
    "IdfTable",
    "idf_table",
    "token_weights",
    "CaptionError",
    "CaptionReport",
    "check_caption",
    "bench",
]

if __name__ == "__main__":
    from taco_lite.text.bench import main

    main()
