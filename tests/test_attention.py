"""Fusion attention read as word -> frame alignment (`taco_lite.evaluate.attention`), and the
column-bias views of `alignment`, on hand-made matrices whose answers are worked out here."""

from __future__ import annotations

import math

import pytest
import torch

from taco_lite.evaluate import alignment, attention
from taco_lite.metrics import grounding_counts

T, F_ = True, False


def test_word_frame_block_drops_padding_and_renormalises_over_real_frames():
    # n = 3 tokens (last one padding), m = 3 frames (last one padding): L = 6
    tmask, vmask = torch.tensor([T, T, F_]), torch.tensor([T, T, F_])
    att = torch.zeros(6, 6)
    att[0] = torch.tensor([0.4, 0.2, 0.0, 0.3, 0.1, 0.0])  # token 0: 0.3 and 0.1 on frames
    att[1] = torch.tensor([0.1, 0.1, 0.0, 0.2, 0.2, 0.4])  # 0.4 leaks to the padded frame
    att[2] = torch.tensor([0.0, 0.0, 0.5, 0.25, 0.25, 0.0])  # padded query
    got = attention.word_frame_block(att, tmask, vmask)  # (3, 3)
    want = torch.tensor([[0.75, 0.25, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(got, want)
    # leading dims (layers, heads) are kept
    stacked = torch.stack([att, att])[:, None]  # (2, 1, 6, 6)
    assert attention.word_frame_block(stacked, tmask, vmask).shape == (2, 1, 3, 3)
    # a row with no mass on real frames stays 0, not NaN
    att[0] = torch.tensor([1.0, 0, 0, 0, 0, 0])
    assert attention.word_frame_block(att, tmask, vmask)[0].tolist() == [0.0, 0.0, 0.0]


def test_word_frame_block_explains_a_size_mismatch():
    with pytest.raises(ValueError, match=r"\(n \+ m, n \+ m\) = \(5, 5\)"):
        attention.word_frame_block(
            torch.rand(6, 6), torch.ones(2, dtype=bool), torch.ones(3, dtype=bool)
        )
    with pytest.raises(ValueError, match="bool"):
        attention.word_frame_block(torch.rand(5, 5), torch.ones(2), torch.ones(3, dtype=bool))


def test_select_heads_picks_or_averages():
    att = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    torch.testing.assert_close(attention.select_heads(att, 1, 2), att[1, 2])
    torch.testing.assert_close(attention.select_heads(att, None, 0), att[:, 0].mean(0))
    torch.testing.assert_close(attention.select_heads(att, 0, None), att[0].mean(0))
    torch.testing.assert_close(attention.select_heads(att, None, None), att.mean((0, 1)))
    with pytest.raises(ValueError, match=r"heads 0..2"):
        attention.select_heads(att, 0, 3)


def test_attention_rollout_by_hand():
    # one layer: (W + I) / 2, rows renormalised (they already sum to 1)
    w = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    one = attention.attention_rollout(w[None, None])
    torch.testing.assert_close(one, torch.full((2, 2), 0.5))
    # two layers, each "everyone reads token 0": A = [[1, 0], [.5, .5]]; A @ A = [[1, 0], [.75, .25]]
    w = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    two = attention.attention_rollout(torch.stack([w, w])[:, None])
    torch.testing.assert_close(two, torch.tensor([[1.0, 0.0], [0.75, 0.25]]))
    # heads are averaged first: two heads [[1,0],[0,1]] and [[0,1],[1,0]] average to 0.5
    heads = torch.stack([torch.eye(2), torch.tensor([[0.0, 1.0], [1.0, 0.0]])])[None]
    torch.testing.assert_close(
        attention.attention_rollout(heads), torch.tensor([[0.75, 0.25], [0.25, 0.75]])
    )
    # order matters: later layers multiply on the left (A_1 A_0)
    a0 = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    a1 = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    r = attention.attention_rollout(torch.stack([a0, a1])[:, None], residual=0.0)
    torch.testing.assert_close(r, a1 @ a0)
    rand = torch.rand(3, 2, 5, 5).softmax(-1)
    torch.testing.assert_close(attention.attention_rollout(rand).sum(-1), torch.ones(5))
    with pytest.raises(ValueError, match="0 layers"):
        attention.attention_rollout(torch.zeros(0, 2, 3, 3))


def test_attention_grounding_uses_the_same_rule_as_similarity_grounding():
    block = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.25, 0.25], [0.3, 0.3, 0.4]])  # (n=3, m=3)
    gold = torch.tensor([[F_, T, F_], [F_, T, T], [F_, F_, F_]])  # token 2 has no gold frame
    g = attention.attention_grounding(block, gold, torch.ones(3, dtype=bool))
    assert (g.correct, g.scored) == (1, 2)  # token 0 right, token 1 wrong, token 2 not scored
    # padded frame 1 is excluded: token 0's best real frame becomes frame 2 (not gold)
    g = attention.attention_grounding(
        block, gold, torch.ones(3, dtype=bool), torch.tensor([T, F_, T])
    )
    assert (g.correct, g.scored) == (0, 1)


def test_clip_accuracies_match_grounding_counts_per_clip():
    g = torch.Generator().manual_seed(0)
    N, n, m = 6, 5, 4
    mats = torch.randn(N, n, m, generator=g)
    gold = torch.rand(N, n, m, generator=g) > 0.6
    tmask = torch.rand(N, n, generator=g) > 0.2
    vmask = torch.ones(N, m, dtype=torch.bool)
    vmask[2, 3:] = False
    gold[4] = False  # a clip with no scored token -> NaN
    acc, scored = attention.clip_accuracies(mats, gold, tmask, vmask)
    for i in range(N):
        c, s = grounding_counts(mats[i], gold[i], tmask[i], vmask[i])
        assert int(scored[i]) == s
        if s:
            assert float(acc[i]) == pytest.approx(c / s)
        else:
            assert math.isnan(float(acc[i]))
    assert math.isnan(float(acc[4]))


# ------------------------------------------------------------------ column bias views


def _biased() -> torch.Tensor:
    """3 words x 4 frames: frame 3 is bright for every word (+2), word p prefers frame p (+1)."""
    s = torch.zeros(3, 4)
    s[:, 3] += 2.0
    s[torch.arange(3), torch.arange(3)] += 1.0
    return s


def test_centre_over_words_removes_the_shared_column():
    s = _biased()
    assert alignment.best_frame_per_token(s).tolist() == [3, 3, 3]  # the column bias wins
    c = alignment.centre_over_words(s)
    torch.testing.assert_close(c.mean(0), torch.zeros(4))  # each column's word-mean is 0
    assert alignment.best_frame_per_token(c).tolist() == [0, 1, 2]
    # only the words enter the mean: rows outside word_mask ([CLS], [SEP]) do not move it
    padded = torch.cat([torch.full((1, 4), 9.0), s, torch.full((1, 4), -9.0)])  # (5, 4)
    words = torch.tensor([F_, T, T, T, F_])
    torch.testing.assert_close(alignment.centre_over_words(padded, words)[1:4], c)
    # padded frames are 0
    out = alignment.centre_over_words(s, video_mask=torch.tensor([T, T, T, F_]))
    assert (out[:, 3] == 0).all()


def test_softmax_over_words_normalises_each_frame_column():
    s = _biased()
    p = alignment.softmax_over_words(s, tau=1.0)
    torch.testing.assert_close(p.sum(0), torch.ones(4))
    torch.testing.assert_close(p[:, 3], torch.full((3,), 1 / 3))  # shared frame: spread evenly
    e = math.e
    assert float(p[0, 0]) == pytest.approx(e / (e + 2))  # word 0 claims frame 0
    assert alignment.best_frame_per_token(p).tolist() == [0, 1, 2]
    words = torch.tensor([T, T, F_])
    q = alignment.softmax_over_words(s, 1.0, words, torch.tensor([T, T, T, F_]))
    assert (q[2] == 0).all() and (q[:, 3] == 0).all()
    torch.testing.assert_close(q[:2, :3].sum(0), torch.ones(3))


def test_apply_view_names_every_view():
    s = _biased()
    assert set(alignment.VIEW_LABELS) == set(alignment.VIEWS)
    torch.testing.assert_close(alignment.apply_view(s, "centred"), alignment.centre_over_words(s))
    torch.testing.assert_close(
        alignment.apply_view(s, "word_softmax", 0.5), alignment.softmax_over_words(s, 0.5)
    )
    with pytest.raises(ValueError, match="word_mask has no True"):
        alignment.centre_over_words(s, torch.zeros(3, dtype=bool))


def test_caption_words_drop_cls_and_sep():
    tmask = torch.tensor([[T, T, T, T, F_], [T, T, T, F_, F_]])
    assert attention.caption_words(tmask).tolist() == [[F_, T, T, F_, F_], [F_, T, F_, F_, F_]]


def test_pick_median_clip_follows_the_stated_rule():
    from taco_lite.widgets.screenshots import pick_median_clip

    acc = torch.tensor([1.0, 0.5, float("nan"), 0.0, 0.5, 1.0, 0.25])
    scored = torch.tensor([2, 4, 0, 3, 2, 1, 4])
    # eligible (>= 2 words): rows 0, 1, 3, 4, 6 -> sorted 0, .25, .5, .5, 1 -> lower median .5
    assert pick_median_clip(acc, scored) == 1
    assert pick_median_clip(acc, scored, min_words=4) == 6  # .25, .5 -> lower median .25
    with pytest.raises(ValueError, match="no clip"):
        pick_median_clip(acc, scored, min_words=9)


def test_grounding_histogram_figure_and_its_errors():
    from taco_lite.viz.lessons import plot_grounding_histogram

    fig = plot_grounding_histogram({"dot": {"TACo": [1.0, 0.5, float("nan")], "L1": [0.0, 0.5]}})
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[0] == "TACo: mean 0.75, median 0.75 (2 clips), 1 without gold"
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        plot_grounding_histogram({"dot": {"TACo": [2.0]}})


def test_check_word_frame_block_names_the_typical_mistakes():
    from taco_lite import course

    def mine(a, t, v):  # a learner's answer (the kit's own fails the check: course/integrity.py)
        n = t.shape[0]
        block = a[:n, n:] * (t[:, None] & v[None, :]).to(a.dtype)
        total = block.sum(1, keepdim=True)
        return torch.where(total > 0, block / total.clamp_min(1e-30), torch.zeros_like(block))

    course.check_word_frame_block(mine, verbose=False)
    with pytest.raises(course.CheckFailed, match="kit's own"):
        course.check_word_frame_block(attention.word_frame_block, verbose=False)

    def keep(t, v):
        return (t[:, None] & v[None, :]).double()

    def no_mask(a, t, v):
        b = a[: t.shape[0], t.shape[0] :]
        return b / b.sum(1, keepdim=True)

    def wrong_axis(a, t, v):
        b = a[: t.shape[0], t.shape[0] :] * keep(t, v)
        return torch.nan_to_num(b / b.sum(0, keepdim=True))

    def no_renorm(a, t, v):
        return a[: t.shape[0], t.shape[0] :] * keep(t, v)

    for fn, words in ((no_mask, "forgot to mask padding"), (wrong_axis, "wrong axis"),
                      (no_renorm, "did not renormalise")):  # fmt: skip
        with pytest.raises(course.CheckFailed, match=words):
            course.check_word_frame_block(fn, verbose=False)

    def todo(a, t, v):
        raise NotImplementedError

    with pytest.raises(NotImplementedError):
        course.check_word_frame_block(todo, verbose=False)


def test_pick_median_clip_skips_clips_that_gold_covers():
    """Issue 19: a clip whose gold frames cover it scores 100% for any model: not eligible."""
    from types import SimpleNamespace

    from taco_lite.widgets.screenshots import gold_coverage, pick_median_clip

    acc = torch.tensor([1.0, 0.5, 0.0, 0.5])
    scored = torch.tensor([2, 2, 2, 2])
    cov = torch.tensor([1.0, 0.4, 0.5, 0.9])
    assert pick_median_clip(acc, scored) == 1  # without the bound: 0, .5, .5, 1 -> .5
    assert pick_median_clip(acc, scored, coverage=cov) == 2  # rows 1, 2: 0, .5 -> 0
    with pytest.raises(ValueError, match="gold frames on <= 50%"):
        pick_median_clip(acc, scored, coverage=torch.ones(4))
    gold = torch.zeros(2, 4, 3, dtype=torch.bool)
    gold[0, 1, 0] = gold[0, 2, 1] = True  # clip 0: frames 0, 1 of 3 -> 2/3
    gold[1, 0, :] = True  # clip 1: only [CLS] "grounded": not a word -> 0
    emb = SimpleNamespace(gold_frames=gold, text_mask=torch.tensor([[T, T, T, T]] * 2),
                          video_mask=torch.ones(2, 3, dtype=torch.bool))  # fmt: skip
    assert torch.allclose(gold_coverage(emb), torch.tensor([2 / 3, 0.0]))
