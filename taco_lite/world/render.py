"""Scene script -> uint8 RGB frames, with numpy only and bit-exact on every machine.

Why the care: the manifest stores a sha256 of the rendered frames, so the same script must
give the same bytes everywhere. Everything that decides a pixel is therefore integer or
exactly representable: positions and motion offsets are integers, radii are quarter pixels,
angles are multiples of 30 degrees (cos/sin built from sqrt(3), which IEEE rounds exactly),
coverage is a count of 4x4 sub-samples, and the noise is integer, drawn from a
per-clip seeded rng. Floating point is used only for +, *, / and sqrt in a fixed order.

Speed: each (shape, radius, angle) sprite is rasterised once and cached, then pasted.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

FRAME_SIZE = 32
BACKGROUND = (70, 74, 82)  # dark slate
COLOUR_RGB: dict[str, tuple[int, int, int]] = {
    "blue": (40, 100, 235),
    "yellow": (240, 215, 40),
    "purple": (160, 70, 210),
    "pink": (250, 140, 190),
    "brown": (150, 90, 40),
    "black": (12, 12, 12),
    "gray": (175, 175, 175),
}
SIZE_RADIUS_Q: dict[str, int] = {"small": 16, "big": 24}  # radius in quarter pixels (4, 6 px)
SUBSAMPLES = 4  # per pixel and axis
MOVE_PX = 8  # fall / rise / slide distance
JUMP_PX = 5  # jump height
SHAKE_PX = 2


def _cos_sin(angle_idx: int) -> tuple[float, float]:
    """cos and sin of angle_idx * 30 degrees, built without libm (exactly reproducible)."""
    h = float(np.sqrt(3.0)) / 2.0
    table = [(1.0, 0.0), (h, 0.5), (0.5, h)]
    k = angle_idx % 12
    c, s = table[k % 3]
    for _ in range(k // 3):  # rotate by 90 degrees
        c, s = -s, c
    return c, s


def _inside(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Membership of points (u right, v down) in the unit shape, which fits in [-1, 1]^2."""
    au, av = np.abs(u), np.abs(v)
    r2 = u * u + v * v
    s3 = float(np.sqrt(3.0))
    if shape == "ball":
        return r2 <= 1.0
    if shape == "cube":
        return (au <= 0.8) & (av <= 0.8)
    if shape == "ring":
        return (r2 <= 1.0) & (r2 >= 0.36)
    if shape == "triangle":
        return (v <= 0.8) & (au <= 0.95 * (v + 1.0) / 1.8)
    if shape == "diamond":
        return au / 0.75 + av <= 1.0
    if shape == "star":  # hexagram: two triangles
        up = (v <= 0.5) & (au <= (v + 1.0) / s3)
        down = (v >= -0.5) & (au <= (1.0 - v) / s3)
        return up | down
    if shape == "bar":
        return (au <= 1.0) & (av <= 0.3)
    if shape == "moon":
        return (r2 <= 1.0) & ((u - 0.45) * (u - 0.45) + (v + 0.1) * (v + 0.1) > 0.64)
    if shape == "egg":
        w = 0.7 * (1.0 + 0.18 * v)
        return (u * u) / (w * w) + v * v <= 1.0
    if shape == "arrow":
        shaft = (u >= -1.0) & (u <= 0.1) & (av <= 0.22)
        head = (u >= 0.1) & (u <= 1.0) & (av <= 0.8 * (1.0 - u) / 0.9)
        return shaft | head
    if shape == "heart":
        lobes = ((u - 0.45) ** 2 + (v + 0.35) ** 2 <= 0.3) | (
            (u + 0.45) ** 2 + (v + 0.35) ** 2 <= 0.3
        )
        tip = (v >= -0.35) & (v <= 0.95) & (au <= 0.98 * (0.95 - v) / 1.3)
        return lobes | tip
    if shape == "fish":
        body = ((u + 0.2) / 0.7) ** 2 + (v / 0.45) ** 2 <= 1.0
        tail = (u >= 0.35) & (u <= 1.0) & (av <= 0.7 * (u - 0.35) / 0.65)
        return body | tail
    raise ValueError(f"unknown shape {shape!r}; known shapes are the nouns in grammar.NOUNS")


# a dark or light dot that makes rotation visible even for round shapes
MARKER: dict[str, tuple[float, float, float]] = {
    "ball": (0.0, -0.5, 0.3),
    "cube": (0.4, -0.4, 0.3),
    "ring": (0.0, -0.8, 0.22),
    "triangle": (0.0, 0.35, 0.3),
    "diamond": (0.0, -0.5, 0.25),
    "star": (0.0, -0.7, 0.25),
    "bar": (0.7, 0.0, 0.3),
    "moon": (-0.65, 0.0, 0.25),
    "egg": (0.0, -0.5, 0.3),
    "arrow": (0.75, 0.0, 0.25),
    "heart": (-0.45, -0.35, 0.3),
    "fish": (-0.55, -0.1, 0.2),
}


@lru_cache(maxsize=8192)
def sprite(shape: str, radius_q: int, angle_idx: int) -> tuple[np.ndarray, np.ndarray]:
    """Coverage of the shape and of its marker, each float32 (S, S) in [0, 1], S = 2h + 1.

    The object's centre is the centre pixel. Coverage = fraction of 4x4 sub-samples inside.
    """
    radius = radius_q / 4.0
    h = radius_q // 4 + 2
    ss = SUBSAMPLES
    offs = (np.arange((2 * h + 1) * ss, dtype=np.float64) + 0.5) / ss - (h + 0.5)  # pixel units
    dy, dx = offs[:, None], offs[None, :]
    c, s = _cos_sin(angle_idx)
    u = (dx * c + dy * s) / radius  # rotate the sample points by -angle
    v = (dy * c - dx * s) / radius
    inside = _inside(shape, u, v)
    mu, mv, mr = MARKER[shape]
    mark = inside & ((u - mu) * (u - mu) + (v - mv) * (v - mv) <= mr * mr)
    S = 2 * h + 1

    def cover(mask: np.ndarray) -> np.ndarray:
        counts = mask.reshape(S, ss, S, ss).sum(axis=(1, 3))
        return (counts.astype(np.float32) / np.float32(ss * ss)).astype(np.float32)

    return cover(inside), cover(mark)


def marker_colour(rgb: tuple[int, int, int]) -> np.ndarray:
    """Darker for light colours, lighter for dark ones, so the marker always shows."""
    c = np.asarray(rgb, dtype=np.float32)
    light = (int(rgb[0]) * 3 + int(rgb[1]) * 6 + int(rgb[2])) >= 800
    return np.floor(c * np.float32(0.35)) if light else np.float32(150.0) + np.floor(c / 2)


def object_state(obj: dict, t: int) -> tuple[int, int, int, int, int] | None:
    """(x, y, radius_q, angle_idx, alpha_20ths) of an object at segment frame t, or None.

    Motions (the verbs) are integer functions of the progress i / (L - 1) inside the event
    window [ws, we); before the window the object rests, after it keeps its final state.
    """
    if not obj["t0"] <= t < obj["t1"]:
        return None
    x, y, rq, ang, alpha = obj["x"], obj["y"], SIZE_RADIUS_Q[obj["size"]], 0, 20
    verb = obj.get("verb")
    if verb is None:
        return x, y, rq, ang, alpha
    ws, we = obj["ws"], obj["we"]
    n = we - ws - 1  # >= 2 by construction
    i = min(max(t - ws, 0), n)
    if verb == "jump":
        y -= (4 * JUMP_PX * i * (n - i)) // (n * n)
    elif verb == "fall":
        y += (MOVE_PX * i) // n
    elif verb == "rise":
        y -= (MOVE_PX * i) // n
    elif verb == "slide":
        x += (MOVE_PX * i) // n
    elif verb == "spin":
        ang = i
    elif verb == "grow":
        rq = (rq * (2 * n + i)) // (2 * n)  # 1x -> 1.5x
    elif verb == "shrink":
        rq = (rq * (2 * n - i)) // (2 * n)  # 1x -> 0.5x
    elif verb == "blink":
        alpha = 20 if (i % 2 == 0 or t >= we) else 4
    elif verb == "shake":
        if ws <= t < we and 0 < i < n:
            x += SHAKE_PX if i % 2 else -SHAKE_PX
    elif verb == "fade":
        alpha = 20 - (16 * i) // n  # 1.0 -> 0.2
    else:
        raise ValueError(f"unknown verb {verb!r}; known verbs are the keys of grammar.VERBS")
    return x, y, rq, ang, alpha


def _paste(canvas: np.ndarray, cov: np.ndarray, x: int, y: int, rgb: np.ndarray) -> None:
    """Alpha-blend `rgb` with coverage `cov` (S, S) centred at pixel (x, y) into (H, W, 3)."""
    H, W = canvas.shape[:2]
    h = cov.shape[0] // 2
    y0, y1, x0, x1 = y - h, y + h + 1, x - h, x + h + 1
    cy0, cy1, cx0, cx1 = max(y0, 0), min(y1, H), max(x0, 0), min(x1, W)
    if cy0 >= cy1 or cx0 >= cx1:
        return
    a = cov[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0, None]  # (h', w', 1)
    region = canvas[cy0:cy1, cx0:cx1]
    region *= np.float32(1.0) - a
    region += a * rgb


def render_segment_into(canvas: np.ndarray, objects: list[dict]) -> None:
    """Draw a segment's objects into its frames, canvas float32 (m, H, W, 3).

    Distractors first, then static objects, then actors, so that the captioned action is
    never hidden behind a distractor.
    """
    rank = {"distractor": 0, "static": 1, "actor": 2}
    for obj in sorted(objects, key=lambda o: rank[o["role"]]):
        rgb = np.asarray(COLOUR_RGB[obj["colour"]], dtype=np.float32)
        mrgb = marker_colour(COLOUR_RGB[obj["colour"]])
        for t in range(canvas.shape[0]):
            st = object_state(obj, t)
            if st is None:
                continue
            x, y, rq, ang, alpha = st
            cov, mark = sprite(obj["shape"], rq, ang)
            a = np.float32(alpha) / np.float32(20.0)
            _paste(canvas[t], cov * a, x, y, rgb)
            _paste(canvas[t], mark * a, x, y, mrgb)


def render_clip(
    num_frames: int,
    segments: list[tuple[int, list[dict]]],
    noise: int,
    noise_seed: int,
    frame_size: int = FRAME_SIZE,
) -> np.ndarray:
    """uint8 (T, H, W, 3) frames of one clip.

    segments: (start frame, objects with times relative to start) for each step. Frames
    outside every step show only the background. `noise` is the amplitude of integer
    uniform pixel noise in [-noise, noise], drawn from default_rng(noise_seed).
    """
    canvas = np.empty((num_frames, frame_size, frame_size, 3), dtype=np.float32)
    canvas[:] = np.asarray(BACKGROUND, dtype=np.float32)
    for start, objects in segments:
        m = max((o["t1"] for o in objects), default=0)
        render_segment_into(canvas[start : start + m], objects)
    frames = np.rint(canvas).astype(np.int16)  # (T, H, W, 3)
    if noise > 0:
        rng = np.random.default_rng(noise_seed)
        frames += rng.integers(-noise, noise + 1, size=frames.shape, dtype=np.int16)
    return np.clip(frames, 0, 255).astype(np.uint8)
