"""Synthetic video instance segmentation data: the embedded default data set.

Textured shapes of several classes move, scale, turn and occlude each other
over textured, noisy backgrounds; optionally (settings off by default) they
also leave the view and come back, change texture, stretch and blur with
their motion. Videos are written as JPEG frames plus
YouTube-VIS-format json with RLE masks (see :mod:`.writer`), deterministic by
seed. Settings and their defaults: :class:`SyntheticVISSettings`.
"""
from .scene import (InstanceTrack, RenderedVideo, VideoScene, render_scene,
                    sample_scene)
from .settings import DEFAULT_CLASSES, GENERATOR_VERSION, SyntheticVISSettings
from .shapes import SHAPES
from .textures import TEXTURES
from .writer import (META_FILE, PREVIEW_FILE, SPLITS, generate_dataset,
                     generate_split, is_complete, make_video,
                     video_annotations, video_name, write_preview)

__all__ = [
    'DEFAULT_CLASSES', 'GENERATOR_VERSION', 'SyntheticVISSettings', 'SHAPES',
    'TEXTURES', 'InstanceTrack', 'VideoScene', 'RenderedVideo', 'sample_scene',
    'render_scene', 'META_FILE', 'PREVIEW_FILE', 'SPLITS', 'make_video',
    'video_annotations', 'video_name', 'generate_split', 'generate_dataset',
    'is_complete', 'write_preview'
]
