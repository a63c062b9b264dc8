"""data.py: WorldDataset, collate -> Batch, build_datasets, DataLoader with workers."""

from dataclasses import dataclass

import numpy as np
import pytest
import spacy
import torch
from torch.utils.data import DataLoader

from taco_lite.batch import Batch
from taco_lite.data import WorldDataset, assign_caption_ids, build_datasets, collate
from taco_lite.text import CLS_ID, PAD_ID, SEP_ID, UNK_ID, Vocab, pos, tokenize
from taco_lite.text.pos import idf_table, upos_id


@dataclass
class FakeSegment:
    """The fields of world.Segment that data.py reads (docs/design.md)."""

    seg_id: int
    caption: str
    start: int
    end: int
    words: list[str]  # spaCy tokens, case kept
    gold_frames: list[list[int]]
    split: str


class FakeWorld:
    """A stand-in with the documented World interface: segments, split(), segment_frames()."""

    def __init__(self, rows):
        blank = spacy.blank("en")
        self.segments = [
            FakeSegment(i, caption, 0, m, [t.text for t in blank(caption)], gold, split)
            for i, (caption, split, m, gold) in enumerate(rows)
        ]

    def split(self, name):
        return [s.seg_id for s in self.segments if s.split == name]

    def segment_frames(self, seg_id):
        seg = self.segments[seg_id]
        m = seg.end - seg.start
        frames = np.zeros((m, 32, 32, 3), dtype=np.uint8)
        frames[:, 0, 0, 0] = seg_id  # a fingerprint to find the right clip again
        frames[:, 0, 0, 1] = np.arange(m)
        frames[:, 1, 1, 2] = 255
        return frames


ROWS = [
    # caption, split, m, gold frames per word
    ("The red ball spins.", "train", 4, [[], [], [0, 1], [1, 2, 3], []]),
    ("A cup falls", "train", 2, [[], [0], [1]]),
    ("it is there", "train", 3, [[], [], []]),
    ("the RED ball spins .", "train", 5, [[], [], [4], [], []]),
    ("The blue cube rolls.", "val", 3, [[], [], [0, 2], [1], []]),
]


@pytest.fixture(scope="module")
def world():
    return FakeWorld(ROWS)


@pytest.fixture(scope="module")
def built(world):
    try:
        pos.load_nlp()
    except OSError:
        pytest.skip("no English spaCy pipeline installed")
    return build_datasets(world, splits=("train", "val"))


def test_build_datasets_uses_train_only_for_vocab_and_idf(built):
    datasets, vocab, idf = built
    assert set(datasets) == {"train", "val"}
    assert len(datasets["train"]) == 4 and len(datasets["val"]) == 1
    assert "ball" in vocab and "cube" not in vocab  # cube is a val word
    assert idf.num_docs == 4
    cube = datasets["val"][0]["text_ids"].tolist()
    assert cube[3] == UNK_ID


def test_item_tensors(built, world):
    datasets, vocab, idf = built
    item = datasets["train"][0]  # The red ball spins .
    assert item["text_ids"].tolist() == [CLS_ID] + [vocab.stoi[w] for w in tokenize(ROWS[0][0])] + [
        SEP_ID
    ]
    assert item["frames"].dtype == torch.uint8 and item["frames"].shape == (4, 3, 32, 32)
    tags = pos.tag_captions([ROWS[0][0]])[0]
    assert item["pos_ids"].tolist() == [0] + [upos_id(t) for t in tags] + [0]
    assert item["token_interest"][0].item() is False and item["token_interest"][-1].item() is False
    assert item["token_interest"][3].item() is True  # ball


def test_collate_pads_and_masks(built):
    datasets, vocab, idf = built
    items = [datasets["train"][i] for i in range(4)]
    b = collate(items)
    assert isinstance(b, Batch)
    B, n = b.text_ids.shape
    m = b.video_mask.shape[1]
    lengths = [len(tokenize(r[0])) + 2 for r in ROWS[:4]]
    assert (B, n, m) == (4, max(lengths), 5)
    assert b.text_mask.sum(1).tolist() == lengths
    assert b.video_mask.sum(1).tolist() == [4, 2, 3, 5]
    assert b.frames.shape == (4, 5, 3, 32, 32) and b.frames.dtype == torch.float32
    assert 0.0 <= b.frames.min() and b.frames.max() <= 1.0
    assert b.frames[0, 0, 2, 1, 1] == 1.0  # uint8 255 -> 1.0
    assert b.frames[2, 1, 1, 0, 0] * 255 == pytest.approx(1.0)  # frame index fingerprint
    # padding is [PAD], zeros and False everywhere
    pad = ~b.text_mask
    assert (b.text_ids[pad] == PAD_ID).all()
    assert not b.token_interest[pad].any() and (b.token_weights[pad] == 0).all()
    assert (b.pos_ids[pad] == 0).all()
    assert (b.frames[~b.video_mask] == 0).all()
    assert not b.gold_frames[~b.video_mask[:, None, :].expand_as(b.gold_frames)].any()
    # specials never count as tokens of interest
    assert not b.token_interest[:, 0].any()
    sep_pos = torch.tensor(lengths) - 1
    assert not b.token_interest[torch.arange(4), sep_pos].any()
    assert (b.text_ids[torch.arange(4), sep_pos] == SEP_ID).all()


def test_collate_weights_rows_sum_to_one_or_zero(built):
    datasets, _, _ = built
    b = collate([datasets["train"][i] for i in range(4)])
    sums = b.token_weights.sum(1)
    assert sums[[0, 1, 3]] == pytest.approx(torch.ones(3))
    assert sums[2] == 0  # 'it is there' has no NOUN/VERB
    assert not torch.isnan(b.token_weights).any()
    assert ((b.token_weights > 0) == b.token_interest).all()


def test_collate_maps_gold_frames_to_token_positions(built):
    datasets, _, _ = built
    b = collate([datasets["train"][i] for i in range(4)])
    expected = torch.zeros_like(b.gold_frames)
    for i, (_, _, _, gold) in enumerate(ROWS[:4]):
        for w, frames in enumerate(gold):
            for f in frames:
                expected[i, w + 1, f] = True  # +1 for [CLS]
    assert torch.equal(b.gold_frames, expected)
    assert b.gold_frames[0, 3].tolist() == [True, True, False, False, False]  # 'ball' in clip 0


def test_caption_ids_group_identical_captions(built):
    datasets, _, _ = built
    b = collate([datasets["train"][i] for i in range(4)])
    ids = b.caption_ids.tolist()
    assert ids[0] == ids[3]  # "The red ball spins." == "the RED ball spins ."
    assert len({ids[0], ids[1], ids[2]}) == 3
    assert b.seg_ids.tolist() == [0, 1, 2, 3]
    assert assign_caption_ids([["A"], ["b"], ["a"]]) == [0, 1, 0]


def test_truncation_keeps_weights_normalised(world):
    vocab = Vocab.build([tokenize(r[0]) for r in ROWS])
    idf = idf_table([tokenize(r[0]) for r in ROWS])
    tags = [["DET", "ADJ", "NOUN", "VERB", "PUNCT"], ["DET", "NOUN", "VERB"], ["PRON", "AUX", "ADV"],
            ["DET", "ADJ", "NOUN", "VERB", "PUNCT"]]  # fmt: skip
    ds = WorldDataset(world, "train", vocab, idf, "noun+verb", tags=tags, max_tokens=5)
    item = ds[0]  # [CLS] the red ball [SEP]: 'spins' is cut
    assert item["text_ids"].numel() == 5 and item["text_ids"][-1] == SEP_ID
    assert item["token_weights"].tolist() == [0, 0, 0, 1.0, 0]
    assert item["gold_frames"].shape == (5, 4)


def test_tags_must_match_the_split(world):
    vocab = Vocab.build(["a"])
    with pytest.raises(ValueError, match="tags has 1 entries but split 'train' has 4 segments"):
        WorldDataset(world, "train", vocab, idf_table(["a"]), tags=[["DET"]])


def test_collate_errors():
    with pytest.raises(ValueError, match="empty list"):
        collate([])
    a = {"text_ids": torch.tensor([CLS_ID, 5, SEP_ID]), "token_interest": torch.zeros(3, dtype=torch.bool),
         "token_weights": torch.zeros(3), "pos_ids": torch.zeros(3, dtype=torch.long),
         "frames": torch.zeros(2, 8), "seg_id": 0, "caption_id": 0}  # fmt: skip
    b = dict(a, frames=torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="same per-frame shape"):
        collate([a, b])


def test_batch_from_fields_and_map_keep_every_field():
    """`Batch.from_fields` is the one loop over fields that collate and Batch.to share."""
    from dataclasses import fields

    from taco_lite.batch import synthetic_batch

    b = synthetic_batch()
    tensors = {f.name: getattr(b, f.name) for f in fields(b)}
    again = Batch.from_fields(tensors)
    assert all(getattr(again, k) is v for k, v in tensors.items())
    moved = b.to("cpu")
    assert moved is not b
    for k, v in tensors.items():
        assert torch.equal(getattr(moved, k), v) and getattr(moved, k).dtype == v.dtype
    halved = b.map(lambda t: t[:2])
    assert len(halved) == 2 and torch.equal(halved.gold_frames, b.gold_frames[:2])
    with pytest.raises(ValueError, match=r"missing \['caption_ids'\], unknown \[\]"):
        Batch.from_fields({k: v for k, v in tensors.items() if k != "caption_ids"})
    with pytest.raises(ValueError, match=r"missing \[\], unknown \['words'\]"):
        Batch.from_fields(dict(tensors, words=b.text_ids))


def test_dataloader_with_workers_and_pin_memory(built):
    datasets, _, _ = built
    ds = datasets["train"]
    loader = DataLoader(ds, batch_size=2, shuffle=False, num_workers=2, collate_fn=collate,
                        pin_memory=torch.cuda.is_available())  # fmt: skip
    batches = list(loader)
    assert [len(b) for b in batches] == [2, 2]
    assert torch.cat([b.seg_ids for b in batches]).tolist() == ds.seg_ids
    ref = collate([ds[0], ds[1]])
    assert torch.equal(batches[0].frames, ref.frames)
    assert torch.equal(batches[0].token_weights, ref.token_weights)


@pytest.fixture(scope="module")
def tiny_world():
    world = pytest.importorskip("taco_lite.world")
    return world.generate_world(world.WorldConfig(seed=0, num_clips=20))


def test_on_a_generated_world(tiny_world, built):
    datasets, vocab, idf = build_datasets(tiny_world, splits=("train", "val", "comp"))
    train = datasets["train"]
    assert train.seg_ids == tiny_world.split("train") and len(train) > 0
    assert idf.num_docs == len(train)
    b = collate([train[i] for i in range(min(8, len(train)))])
    B = len(b)
    assert b.frames.shape[2:] == (3, 32, 32)
    for i in range(B):
        seg = tiny_world.segments[int(b.seg_ids[i])]
        assert b.video_mask[i].sum() == seg.end - seg.start
        # frames are the world's frames, channels first, in [0, 1]
        ref = torch.from_numpy(np.array(tiny_world.segment_frames(seg.seg_id))).permute(0, 3, 1, 2)
        assert torch.equal((b.frames[i, : seg.end - seg.start] * 255).round().byte(), ref)
        # gold frames of word w sit on token w + 1
        for w, frames in enumerate(seg.gold_frames):
            got = b.gold_frames[i, w + 1].nonzero().flatten().tolist()
            assert got == sorted(frames)
        assert b.text_mask[i].sum() == len(seg.words) + 2
    rows = b.token_weights.sum(1)
    assert ((rows - 1).abs() < 1e-6).logical_or(rows == 0).all()
