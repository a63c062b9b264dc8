"""The procedurally generated video-text world: small clips with ground truth per word.

Real video datasets cannot be downloaded in the kit, so it generates its own: 32x32 RGB
clips whose captions name the objects (nouns) and motions (verbs) on screen, with gold
UPOS tags and the frames each noun and verb refers to. numpy only (no torch).

    from taco_lite.world import generate_world, load_world, save_world, WorldConfig
    world = load_world()                  # data/world, checked against its manifest
    world.segment_frames(0)               # uint8 (m, 32, 32, 3)
"""

from .generate import generate_world
from .grammar import COLOURS, NOUNS, SIZES, VERBS
from .io import WorldFileError, default_world_path, load_world, save_world
from .types import FORMAT_VERSION, REGENERATE, SPLITS, TASKS, Clip, Segment, World, WorldConfig

__all__ = [
    "COLOURS",
    "FORMAT_VERSION",
    "NOUNS",
    "REGENERATE",
    "SIZES",
    "SPLITS",
    "TASKS",
    "VERBS",
    "Clip",
    "Segment",
    "World",
    "WorldConfig",
    "WorldFileError",
    "default_world_path",
    "generate_world",
    "load_world",
    "save_world",
]
