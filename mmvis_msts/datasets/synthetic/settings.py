"""Settings of the synthetic video instance segmentation generator."""
import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Dict, Tuple

from .shapes import SHAPES
from .textures import TEXTURES

#: Bump when a change to the generator alters its output for the same
#: settings, so that existing data on disk is regenerated.
GENERATOR_VERSION = 1

#: Class names of the default data set (the shape of each object).
DEFAULT_CLASSES = ('circle', 'triangle', 'square', 'star')

#: Largest ``shape_stretch``: a log aspect of 2 already makes a circle an
#: ellipse 7.4 times longer than wide.
_MAX_STRETCH = 2.0

IntRange = Tuple[int, int]
FloatRange = Tuple[float, float]


@dataclass(frozen=True)
class SyntheticVISSettings:
    """Every knob of the synthetic VIS generator, with the defaults of the
    embedded data set.

    Ranges are inclusive ``(low, high)`` pairs and a value is drawn uniformly
    from them per video or per instance, as stated. Sizes, speeds and margins
    are given relative to the short side of the frame, so that they mean the
    same at every frame size. The class of an object decides only its shape;
    its colours and texture are drawn independently of the class.

    Attributes:
        seed (int): Root seed. Video ``i`` of split ``s`` is drawn from its
            own generator seeded with ``(seed, s, i)``, so videos are
            reproducible one by one, independent of the number of workers,
            and the val stream never repeats a train video.
            Defaults to 0.
        num_train (int): Number of videos in the train split.
            Defaults to 1200.
        num_val (int): Number of videos in the val split (with ground truth,
            for a local mAP). Defaults to 100.
        classes (tuple[str]): Shape classes, in label order (category id =
            position + 1). Known shapes: circle (ellipse), triangle, square
            (rectangle), star (five-pointed), ring (ellipse with a hole),
            cross (plus sign). Defaults to
            ``('circle', 'triangle', 'square', 'star')``.
        num_frames (tuple[int, int]): Range of the number of frames of a
            video. Defaults to (6, 12).
        frame_height (tuple[int, int]): Range of the frame height in pixels,
            drawn per video and rounded to ``size_divisor``.
            Defaults to (64, 80).
        aspect_ratio (tuple[float, float]): Range of width / height, drawn
            per video; the width is rounded to ``size_divisor``.
            Defaults to (1.3, 1.6).
        size_divisor (int): Frame height and width are multiples of this.
            Defaults to 8.
        num_instances (tuple[int, int]): Range of the number of objects in a
            video. Defaults to (1, 3).
        object_size (tuple[float, float]): Range of an object's diameter
            (that of the circle the shape fits in; the extent of a triangle
            or star is about 0.8 of it) as a fraction of the short side.
            The initial size is drawn from it and scaling keeps the size
            inside it. Defaults to (0.35, 0.6): at 64-80 px frames that is
            22-48 px, 3-6 cells of a stride-8 feature map (smaller objects
            left the tiny CPU model only 2-3 cells to tell a triangle from
            a star; docs/main_job.md).
        speed (tuple[float, float]): Range of an object's speed, as a
            fraction of the short side per frame. Objects bounce off the
            border region given by ``border_margin``.
            Defaults to (0.01, 0.08).
        border_margin (float): How far the centre of an object stays from
            the frame border, as a fraction of the short side; 0 lets half
            of an object leave the frame. Defaults to 0.05.
        scale_rate (float): Largest change of log-size per frame; each
            object grows or shrinks at a rate drawn from
            ``[-scale_rate, scale_rate]`` and bounces off the size range.
            Defaults to 0.05.
        rotation_speed (float): Largest rotation speed in degrees per frame;
            each object turns at a rate drawn from
            ``[-rotation_speed, rotation_speed]``. Defaults to 12.0.
        occlusion_prob (float): Probability that a video with two or more
            objects sets two of them on paths that cross (their centres
            meet, up to ``occlusion_offset``, at a frame in the middle of
            the video). The later object in the depth order hides the
            other, whose mask loses the hidden part. Objects also overlap by
            chance. Defaults to 0.6.
        occlusion_offset (float): Largest distance of the two centres at the
            crossing frame, as a fraction of the sum of their radii; small
            values give heavy occlusion. Defaults to 0.6.
        partial_track_prob (float): Probability that an object other than
            the first one is present only in a contiguous part (at least
            half) of the video, appearing late or leaving early.
            Defaults to 0.1.
        camera_speed (float): Largest background pan in pixels per frame,
            drawn per video and axis. Defaults to 1.0.
        object_textures (tuple[str]): Texture kinds drawn for objects:
            solid, stripes, checker, gradient, noise. Defaults to all five.
        background_textures (tuple[str]): Texture kinds drawn for the
            background. Defaults to ``('noise', 'stripes', 'checker',
            'gradient')``.
        object_texture_contrast (tuple[float, float]): Range of the RGB
            distance between the two colours of an object texture.
            Defaults to (30.0, 140.0).
        background_texture_contrast (tuple[float, float]): Range of the RGB
            distance between the two colours of a background texture.
            Defaults to (30.0, 120.0).
        background_clutter (int): Largest number of random line strokes
            drawn over a background (unannotated distractors).
            Defaults to 6.
        min_contrast (float): Smallest RGB distance between the mean colour
            of an object's texture and that of the background; colours are
            redrawn until it holds (up to 50 tries, then the most distinct
            draw is kept). Defaults to 60.0.
        noise_std (tuple[float, float]): Range of the standard deviation of
            the per-pixel Gaussian noise added to every frame, drawn per
            video. Defaults to (3.0, 10.0).
        jpeg_quality (int): JPEG quality of the written frames (1-100).
            Defaults to 90.
        min_visible_area (int): An object with fewer visible pixels than
            this in a frame gets no annotation for that frame (fully hidden
            or out of view). Defaults to 1.
        reentry_prob (float): Probability that an object other than the
            first one, present over the whole video, leaves the view and
            comes back: it slides out over the nearest border, stays out
            for a gap of frames in the middle of the video and slides back
            in over the same border, keeping its instance id. Leaving and
            coming back take a tenth of the video each (at least a frame);
            the object is fully out of view on the gap frames, which get no
            annotation (nor may a slide frame next to them, where a shape
            smaller than its disc can be out already). An object of a
            partial track does not also leave.
            This and the settings below draw from the video's generator
            after the ones above and only when on, so switching one on keeps
            what the settings above it drew (size, objects, paths); only
            the pixel noise changes besides. Defaults to 0.0 (off).
        reentry_gap (tuple[float, float]): Range of the length of the gap of
            ``reentry_prob``, as a fraction of the video's frames (rounded,
            at least one frame; shortened where the video is too short to
            hold the gap, the slides and a frame in view at either end; no
            object leaves a video of fewer than 5 frames).
            Defaults to (0.15, 0.35).
        texture_change_prob (float): Probability that an object's
            appearance changes over the video: a second texture (kind and
            colours) is drawn like the first, and the object's texture
            blends linearly from the first at the first frame to the second
            at the last. Defaults to 0.0 (off).
        shape_stretch (float): Largest stretch of an object's shape over the
            video, as a log aspect ratio: its own two axes scale by
            ``exp(+s / 2)`` and ``exp(-s / 2)`` (area kept), with ``s``
            going linearly from 0 at the first frame to a value drawn from
            ``[-shape_stretch, shape_stretch]`` at the last. The texture
            stretches with the shape; the class (corners, hole, arms) stays
            that of the shape. Defaults to 0.0 (off).
        motion_blur (float): Exposure time as a fraction of the frame
            interval: each object's pixels are smeared along the motion of
            its centre over ``motion_blur`` times its displacement per frame
            (the blurred object is alpha-composited, so it shows the
            background or the objects behind it through its smeared edges).
            The masks stay the unblurred shape at the middle of the
            exposure, which on an edge across the motion is where the
            smeared object's opacity is 50%. Uses no random draws.
            Defaults to 0.0 (off).
    """

    seed: int = 0
    num_train: int = 1200
    num_val: int = 100
    classes: Tuple[str, ...] = DEFAULT_CLASSES
    num_frames: IntRange = (6, 12)
    frame_height: IntRange = (64, 80)
    aspect_ratio: FloatRange = (1.3, 1.6)
    size_divisor: int = 8
    num_instances: IntRange = (1, 3)
    object_size: FloatRange = (0.35, 0.6)
    speed: FloatRange = (0.01, 0.08)
    border_margin: float = 0.05
    scale_rate: float = 0.05
    rotation_speed: float = 12.0
    occlusion_prob: float = 0.6
    occlusion_offset: float = 0.6
    partial_track_prob: float = 0.1
    camera_speed: float = 1.0
    object_textures: Tuple[str, ...] = ('solid', 'stripes', 'checker',
                                        'gradient', 'noise')
    background_textures: Tuple[str, ...] = ('noise', 'stripes', 'checker',
                                            'gradient')
    object_texture_contrast: FloatRange = (30.0, 140.0)
    background_texture_contrast: FloatRange = (30.0, 120.0)
    background_clutter: int = 6
    min_contrast: float = 60.0
    noise_std: FloatRange = (3.0, 10.0)
    jpeg_quality: int = 90
    min_visible_area: int = 1
    reentry_prob: float = 0.0
    reentry_gap: FloatRange = (0.15, 0.35)
    texture_change_prob: float = 0.0
    shape_stretch: float = 0.0
    motion_blur: float = 0.0

    def __post_init__(self) -> None:
        # Normalise sequences (e.g. lists from argparse or json) to tuples so
        # that settings compare and hash by value.
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                object.__setattr__(self, f.name, tuple(value))
        self._check()

    def _check(self) -> None:
        """Fail early, naming the bad setting and value."""
        if self.seed < 0:
            raise ValueError(f'seed must be >= 0, got {self.seed}')
        for name in ('num_train', 'num_val', 'background_clutter'):
            if getattr(self, name) < 0:
                raise ValueError(
                    f'{name} must be >= 0, got {getattr(self, name)}')
        if not self.classes:
            raise ValueError('classes must not be empty')
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f'classes has duplicates: {self.classes}')
        _check_names('classes', self.classes, SHAPES)
        _check_names('object_textures', self.object_textures, TEXTURES)
        _check_names('background_textures', self.background_textures, TEXTURES)
        for name, minimum in (('num_frames', 1), ('frame_height',
                                                  16), ('num_instances', 1),
                              ('aspect_ratio', 0.2), ('object_size', 1e-3),
                              ('speed', 0.0), ('object_texture_contrast', 0.0),
                              ('background_texture_contrast',
                               0.0), ('noise_std', 0.0)):
            _check_range(name, getattr(self, name), minimum)
        if self.object_size[1] > 1.0:
            raise ValueError(
                f'object_size must be <= 1 (a fraction of the short side), '
                f'got {self.object_size}')
        if self.size_divisor < 1:
            raise ValueError(
                f'size_divisor must be >= 1, got {self.size_divisor}')
        low = math.ceil(self.frame_height[0] / self.size_divisor)
        if low * self.size_divisor > self.frame_height[1]:
            raise ValueError(
                f'frame_height {self.frame_height} holds no multiple of '
                f'size_divisor {self.size_divisor}')
        if not 0.0 <= self.border_margin < 0.5:
            raise ValueError(
                f'border_margin must be in [0, 0.5), got {self.border_margin}')
        for name in ('occlusion_prob', 'partial_track_prob', 'reentry_prob',
                     'texture_change_prob', 'motion_blur'):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(
                    f'{name} must be in [0, 1], got {getattr(self, name)}')
        for name in ('scale_rate', 'rotation_speed', 'occlusion_offset',
                     'camera_speed', 'min_contrast', 'shape_stretch'):
            if getattr(self, name) < 0:
                raise ValueError(
                    f'{name} must be >= 0, got {getattr(self, name)}')
        _check_range('reentry_gap', self.reentry_gap, 0.0)
        if self.reentry_gap[1] >= 1.0:
            raise ValueError(
                f'reentry_gap must be < 1 (a fraction of the video), got '
                f'{self.reentry_gap}')
        if self.shape_stretch > _MAX_STRETCH:
            raise ValueError(f'shape_stretch must be <= {_MAX_STRETCH}, got '
                             f'{self.shape_stretch}')
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(
                f'jpeg_quality must be in [1, 100], got {self.jpeg_quality}')
        if self.min_visible_area < 1:
            raise ValueError(f'min_visible_area must be >= 1, got '
                             f'{self.min_visible_area}')

    def to_dict(self) -> dict:
        """Return the settings as a json-ready dict (tuples become lists)."""
        return {
            f.name: list(v) if isinstance(v, tuple) else v
            for f in dataclasses.fields(self)
            for v in [getattr(self, f.name)]
        }

    @classmethod
    def field_docs(cls) -> Dict[str, str]:
        """Return each setting's documentation from the class docstring.

        Returns:
            dict[str, str]: Setting name -> its one-paragraph description
            (the text after ``name (type):`` in ``Attributes``).
        """
        attrs = cls.__doc__.split('Attributes:', 1)[1]
        docs = {}
        for match in re.finditer(
                r'^ {8}(\w+) \([^)]*\): (.*?)(?=^ {8}\w+ \(|\Z)', attrs,
                re.M | re.S):
            docs[match.group(1)] = ' '.join(match.group(2).split())
        return docs


def _check_names(name: str, values: Tuple[str, ...], known: dict) -> None:
    if not values:
        raise ValueError(f'{name} must not be empty')
    unknown = [v for v in values if v not in known]
    if unknown:
        raise ValueError(f'{name} has unknown entries {unknown}; '
                         f'known: {sorted(known)}')


def _check_range(name: str, value: tuple, minimum: float) -> None:
    if len(value) != 2 or not minimum <= value[0] <= value[1]:
        raise ValueError(f'{name} must be (low, high) with {minimum} <= '
                         f'low <= high, got {value}')
