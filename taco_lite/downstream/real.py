"""CrossTask and COIN releases as downstream videos (real pre-extracted features).

`load_crosstask` gives `LocalizationVideo`s and `load_coin` gives `SegmentationVideo`s, with
`frames` float [T, D] (one row per feature step, memory-mapped). The folder layouts are in
docs/downstream.md; every reader says which file or field was wrong and where the layout is.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from taco_lite.downstream.data import _DOCS, LocalizationVideo, SegmentationVideo


def _features(path: Path, video_id: str, what: str) -> np.ndarray:
    """Memory-map features/<video_id>.npy and check it is a 2-D numeric [T, D] array."""
    if not path.is_file():
        raise FileNotFoundError(
            f"feature file {path} not found: {what} lists video {video_id!r}, so it needs "
            f"features/{video_id}.npy, float [T, D] at one row per feature step ({_DOCS})"
        )
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as e:  # ValueError, OSError or EOFError on a broken file
        raise ValueError(
            f"cannot read {path} as a .npy array ({type(e).__name__}: {e}): re-save it with "
            "numpy.save(path, features.astype('float32'))"
        ) from None
    if arr.ndim != 2 or arr.shape[0] == 0 or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(
            f"{path} has shape {arr.shape} and dtype {arr.dtype} but features must be a "
            "numeric 2-D [T, D] array with T >= 1 (one row per feature step)"
        )
    return arr


def read_crosstask_tasks(path: str | Path) -> dict[str, list[str]]:
    """CrossTask's task file (tasks_primary.txt) -> {task_id: [step description, ...]}.

    Blocks of 5 lines and a blank line: task id, task name, URL, number of steps K, the K step
    descriptions separated by commas.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CrossTask task file {path} not found ({_DOCS})")
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    tasks: dict[str, list[str]] = {}
    i = 0
    while i < len(lines):
        if not lines[i]:
            i += 1
            continue
        block = lines[i : i + 5]
        where = f"{path}, line {i + 1}"
        if len(block) < 5:
            raise ValueError(
                f"{where}: task {block[0]!r} has {len(block)} of its 5 lines (id, name, url, "
                "number of steps, comma-separated steps)"
            )
        task_id, _, _, count, steps = block
        try:
            k = int(count)
        except ValueError:
            raise ValueError(
                f"{where}: the 4th line of task {task_id!r} must be its number of steps, "
                f"got {count!r}"
            ) from None
        names = [s.strip() for s in steps.split(",")]
        if len(names) != k:
            raise ValueError(
                f"{where}: task {task_id!r} says {k} steps but lists {len(names)}: {names}"
            )
        tasks[task_id] = names
        i += 5
    if not tasks:
        raise ValueError(f"{path} holds no task ({_DOCS})")
    return tasks


def read_crosstask_annotation(
    path: str | Path, num_steps: int, num_frames: int, features_per_second: float = 1.0
) -> np.ndarray:
    """One CrossTask annotation CSV (rows `step_id,start_sec,end_sec`, step ids from 1)
    -> gold bool [T, K].

    Rows become frames [floor(start * fps), ceil(end * fps)), as in CrossTask's own
    `read_assignment`. A step may occur several times, or not at all (an empty column).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CrossTask annotation {path} not found ({_DOCS})")
    gold = np.zeros((num_frames, num_steps), dtype=bool)
    with path.open(newline="", encoding="utf-8") as f:
        for r, row in enumerate(csv.reader(f), start=1):
            if not row or all(not c.strip() for c in row):
                continue
            where = f"{path}, row {r}"
            if len(row) != 3:
                raise ValueError(
                    f"{where}: expected 3 values `step_id,start_sec,end_sec`, got {row}"
                )
            try:
                step, start, end = int(row[0]), float(row[1]), float(row[2])
            except ValueError:
                raise ValueError(
                    f"{where}: `step_id,start_sec,end_sec` must be an integer and two numbers, "
                    f"got {row}"
                ) from None
            if not 1 <= step <= num_steps:
                raise ValueError(
                    f"{where}: step_id {step} but the task has steps 1..{num_steps} (CrossTask "
                    "numbers steps from 1)"
                )
            if not (math.isfinite(start) and math.isfinite(end)) or not 0 <= start <= end:
                raise ValueError(f"{where}: need 0 <= start_sec <= end_sec, got {start}, {end}")
            lo = math.floor(start * features_per_second)
            hi = math.ceil(end * features_per_second)
            if lo >= num_frames:
                raise ValueError(
                    f"{where}: the step starts at {start} s = row {lo}, but the features have "
                    f"{num_frames} rows ({num_frames / features_per_second:.1f} s): wrong "
                    "features_per_second, or the wrong video's features?"
                )
            gold[lo : min(hi, num_frames), step - 1] = True
    return gold


def load_crosstask(
    root: str | Path,
    tasks_file: str = "tasks_primary.txt",
    features_per_second: float = 1.0,
) -> list[LocalizationVideo]:
    """Every annotated video of a CrossTask-layout folder, as `LocalizationVideo`s.

        root/tasks_primary.txt                  the task file (`read_crosstask_tasks`)
        root/annotations/<task>_<video>.csv     rows step_id,start_sec,end_sec
        root/features/<video>.npy               float [T, D], `features_per_second` rows a second

    Step descriptions are the task's (the same for every video of the task).
    """
    root = Path(root)
    tasks = read_crosstask_tasks(root / tasks_file)
    ann_dir = root / "annotations"
    if not ann_dir.is_dir():
        raise FileNotFoundError(f"no folder {ann_dir}: CrossTask annotations go there ({_DOCS})")
    videos = []
    for path in sorted(ann_dir.glob("*.csv")):
        task, sep, video_id = path.stem.partition("_")
        if not sep or task not in tasks:
            raise ValueError(
                f"{path.name}: annotation files are named <task_id>_<video_id>.csv with a "
                f"task_id from {tasks_file} ({sorted(tasks)[:5]}...)"
            )
        feats = _features(root / "features" / f"{video_id}.npy", video_id, str(path))
        gold = read_crosstask_annotation(
            path, len(tasks[task]), feats.shape[0], features_per_second
        )
        videos.append(LocalizationVideo(video_id, task, feats, list(tasks[task]), gold))
    if not videos:
        raise ValueError(f"{ann_dir} holds no .csv annotation ({_DOCS})")
    return videos


def load_coin(
    root: str | Path,
    json_file: str = "COIN.json",
    features_per_second: float = 1.0,
    subset: str | None = None,
    skip_missing: bool = False,
) -> tuple[list[SegmentationVideo], list[str]]:
    """Videos of a COIN-layout folder with per-frame labels, and the label names.

        root/COIN.json             {"database": {video_id: {"annotation": [{"id", "segment":
                                   [start_sec, end_sec], "label"}, ...], "recipe_type", "subset"}}}
        root/features/<video>.npy  float [T, D], `features_per_second` rows a second

    Step class ids ("id") of the whole file (every subset) are mapped, in numeric order, to
    labels 1..K, so that two subsets read separately share labels; label 0 is background.
    Frame t gets the step whose [start, end) holds its centre (t + 0.5) / fps (the last one
    listed wins on overlap). subset: keep only videos with this "subset" ("training",
    "testing"). skip_missing: skip videos without a feature file instead of raising.
    """
    root = Path(root)
    path = root / json_file
    if not path.is_file():
        raise FileNotFoundError(f"COIN annotation file {path} not found ({_DOCS})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ValueError(f"{path} is not valid JSON ({e})") from None
    db = data.get("database") if isinstance(data, dict) else None
    if not isinstance(db, dict):
        raise ValueError(f'{path} must hold {{"database": {{video_id: {{...}}}}}} ({_DOCS})')
    entries = []
    for vid, entry in db.items():
        anns = entry.get("annotation")
        if not isinstance(anns, list):
            raise ValueError(f"{path}: video {vid!r} has no 'annotation' list ({_DOCS})")
        steps = []
        for a, ann in enumerate(anns):
            where = f"{path}: video {vid!r}, annotation {a}"
            try:
                cls, (start, end) = int(ann["id"]), ann["segment"]
                start, end = float(start), float(end)
            except (KeyError, TypeError, ValueError):
                raise ValueError(
                    f'{where}: expected {{"id": <int>, "segment": [start_sec, end_sec], '
                    f'"label": <name>}}, got {ann!r}'
                ) from None
            if not (math.isfinite(start) and math.isfinite(end)) or not 0 <= start <= end:
                raise ValueError(f"{where}: need 0 <= start <= end, got segment {ann['segment']}")
            steps.append((cls, start, end, str(ann.get("label", cls))))
        entries.append((vid, str(entry.get("recipe_type", "")), steps, entry.get("subset")))
    # labels from every video of the file, so that "training" and "testing" agree on them
    classes = sorted({s[0] for *_, steps, _ in entries for s in steps})
    index = {c: i + 1 for i, c in enumerate(classes)}
    names = ["background"] + [""] * len(classes)
    for *_, steps, _ in entries:
        for cls, _, _, name in steps:
            names[index[cls]] = names[index[cls]] or name
    videos = []
    for vid, task, steps, video_subset in entries:
        if subset is not None and video_subset != subset:
            continue
        fpath = root / "features" / f"{vid}.npy"
        if skip_missing and not fpath.is_file():
            continue
        feats = _features(fpath, vid, str(path))
        T = feats.shape[0]
        centres = (np.arange(T) + 0.5) / features_per_second  # (T,) seconds
        labels = np.zeros(T, dtype=np.int64)
        for cls, start, end, _ in steps:
            labels[(centres >= start) & (centres < end)] = index[cls]
        videos.append(SegmentationVideo(vid, task, feats, labels))
    if not videos:
        raise ValueError(f"{path}: no video left (subset={subset!r}, skip_missing={skip_missing})")
    return videos, names
