"""Smaller input errors from issue 11, each a clear message instead of a traceback or silence:
Vocab.encode of None / bytes, `python -m taco_lite.world` with too few clips, and the world's
regenerate hint naming the folder that was really read."""

from __future__ import annotations

import pytest

from taco_lite.text import Vocab
from taco_lite.world import load_world
from taco_lite.world.__main__ import main as world_main


@pytest.fixture
def vocab() -> Vocab:
    return Vocab.build(["The ball rolls.", "a cup spins"])


@pytest.mark.parametrize(
    "bad, match",
    [
        (None, "takes a caption .* not NoneType"),
        (b"the ball rolls", "got bytes .*decode"),
        (42, "not int"),
        (["the", None], "holding NoneType"),
    ],
)
def test_vocab_encode_rejects_non_text_clearly(vocab, bad, match):
    with pytest.raises(ValueError, match=match):
        vocab.encode(bad)
    assert vocab.encode("the ball")[1:-1] == vocab.encode(["the", "ball"])[1:-1]


@pytest.mark.parametrize("n, match", [(0, "needs clips"), (3, "without a single segment")])
def test_world_cli_refuses_an_unusable_world(tmp_path, capsys, n, match):
    out = tmp_path / "w"
    with pytest.raises(SystemExit) as exit_:
        world_main(["--num-clips", str(n), "--out", str(out)])
    assert exit_.value.code == 2
    assert match in capsys.readouterr().err
    assert not out.exists()  # nothing written


def test_regenerate_hint_names_the_folder_loaded(tmp_path, monkeypatch):
    folder = tmp_path / "my_world"
    folder.mkdir()
    monkeypatch.setenv("TACO_LITE_DATA", str(folder))
    with pytest.raises(FileNotFoundError) as err:
        load_world()
    assert f"--out {folder}`" in str(err.value)
    assert "--out data/world" not in str(err.value)
