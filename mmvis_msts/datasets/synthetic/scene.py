"""Sampling and rendering of one synthetic video.

A video is a :class:`VideoScene` (drawn from the settings with one random
generator) that :func:`render_scene` turns into frames and per-instance
masks. Instances are listed back to front: a later instance hides the
earlier ones where they overlap, and the hidden pixels are removed from the
earlier instances' visible masks.
"""
import math
from dataclasses import dataclass
from typing import List

import cv2
import numpy as np

from .settings import SyntheticVISSettings
from .shapes import SHAPES, Outline, canonical_to_frame, rasterize
from .textures import TEXTURES, blend, draw_colours

#: Side of the square texture of an object; it covers the canonical square
#: [-1, 1]^2, so the texture moves, turns and scales with the object.
TEXTURE_SIZE = 64

#: Tries at drawing object colours that stand out from the background.
_COLOUR_TRIES = 50


@dataclass
class InstanceTrack:
    """One object and its motion over the video.

    Attributes:
        label (int): Class index into ``settings.classes``.
        outline (Outline): Shape in canonical coordinates.
        texture (np.ndarray): (S, S, 3) float32 texture over the canonical
            square, S = :data:`TEXTURE_SIZE`.
        centers (np.ndarray): (T, 2) centre (x, y) in pixels per frame.
        radii (np.ndarray): (T,) radius in pixels of the unit disc per frame.
        angles (np.ndarray): (T,) rotation in radians per frame.
        present (np.ndarray): (T,) bool, False where the object is absent
            from the video (late entry or early exit).
    """

    label: int
    outline: Outline
    texture: np.ndarray
    centers: np.ndarray
    radii: np.ndarray
    angles: np.ndarray
    present: np.ndarray


@dataclass
class VideoScene:
    """Everything needed to render one video.

    Attributes:
        height (int): Frame height H.
        width (int): Frame width W.
        num_frames (int): Number of frames T.
        background (np.ndarray): (H + 2p, W + 2p, 3) float32 background,
            larger than a frame by the camera pan margin p.
        camera (np.ndarray): (T, 2) int offsets (x, y) of the frame window in
            the background.
        noise_std (float): Standard deviation of the per-pixel noise.
        instances (list[InstanceTrack]): Objects, back to front.
    """

    height: int
    width: int
    num_frames: int
    background: np.ndarray
    camera: np.ndarray
    noise_std: float
    instances: List[InstanceTrack]


@dataclass
class RenderedVideo:
    """Frames and masks of a rendered video (K instances).

    Attributes:
        frames (np.ndarray): (T, H, W, 3) uint8 frames (BGR channel order,
            as written by OpenCV; colours are random, so the order only
            matters for reading the files back).
        amodal (np.ndarray): (T, K, H, W) bool full extent of each object
            inside the frame, hidden parts included.
        visible (np.ndarray): (T, K, H, W) bool visible pixels of each
            object: its amodal mask minus those of the objects in front.
        labels (np.ndarray): (K,) int class indices.
    """

    frames: np.ndarray
    amodal: np.ndarray
    visible: np.ndarray
    labels: np.ndarray


def reflect(x: np.ndarray, low, high) -> np.ndarray:
    """Fold values into ``[low, high]`` as a ball bouncing off both ends.

    Applied to a linear path ``x0 + v * t`` it gives constant-speed motion
    that bounces at the bounds.

    Args:
        x (np.ndarray): Values, broadcastable with the bounds.
        low (float | np.ndarray): Lower bound(s).
        high (float | np.ndarray): Upper bound(s), >= low; where equal to
            ``low`` the result is ``low``.

    Returns:
        np.ndarray: Folded values, the broadcast shape of the inputs.
    """
    span = np.asarray(high, np.float64) - low
    safe = np.where(span > 0, span, 1.0)
    y = np.mod(x - low, 2 * safe)
    return low + np.where(span > 0, np.where(y > safe, 2 * safe - y, y), 0.0)


def _draw_background(settings: SyntheticVISSettings, rng: np.random.Generator,
                     height: int, width: int) -> np.ndarray:
    """Textured background with random line strokes over it."""
    kind = settings.background_textures[rng.integers(
        len(settings.background_textures))]
    colours = draw_colours(rng, settings.background_texture_contrast)
    image = blend(TEXTURES[kind](rng, height, width), colours)
    image = np.round(image).astype(np.uint8)
    for _ in range(rng.integers(settings.background_clutter + 1)):
        p1 = (int(rng.integers(width)), int(rng.integers(height)))
        p2 = (int(rng.integers(width)), int(rng.integers(height)))
        colour = np.clip(colours.mean(0) + rng.normal(0.0, 50.0, 3), 0, 255)
        cv2.line(image, p1, p2, [float(c) for c in colour],
                 int(rng.integers(1, 3)), cv2.LINE_AA)
    return image.astype(np.float32)


def _draw_texture(settings: SyntheticVISSettings, rng: np.random.Generator,
                  background_mean: np.ndarray) -> np.ndarray:
    """Object texture whose mean colour stands out from the background."""
    kinds = settings.object_textures
    kind = kinds[rng.integers(len(kinds))]
    weight = TEXTURES[kind](rng, TEXTURE_SIZE, TEXTURE_SIZE)
    mean_weight = float(weight.mean())
    best, best_dist = None, -1.0
    for _ in range(_COLOUR_TRIES):
        colours = draw_colours(rng, settings.object_texture_contrast)
        mean = (1 - mean_weight) * colours[0] + mean_weight * colours[1]
        dist = float(np.linalg.norm(mean - background_mean))
        if dist > best_dist:
            best, best_dist = colours, dist
        if dist >= settings.min_contrast:
            break
    return blend(weight, best)


def _draw_tracks(settings: SyntheticVISSettings, rng: np.random.Generator,
                 num_instances: int, height: int, width: int,
                 num_frames: int) -> List[dict]:
    """Motion of every object: centres, radii and angles per frame."""
    short = min(height, width)
    t = np.arange(num_frames, dtype=np.float64)
    margin = settings.border_margin * short
    low = np.array([margin, margin])
    high = np.array([width - 1 - margin, height - 1 - margin])
    log_low = math.log(settings.object_size[0] * short / 2)
    log_high = math.log(settings.object_size[1] * short / 2)
    tracks = []
    for _ in range(num_instances):
        speed = rng.uniform(*settings.speed) * short
        heading = rng.uniform(0.0, 2 * np.pi)
        log_r = rng.uniform(log_low, log_high)
        growth = rng.uniform(-settings.scale_rate, settings.scale_rate)
        spin = math.radians(
            rng.uniform(-settings.rotation_speed, settings.rotation_speed))
        tracks.append(
            dict(
                start=rng.uniform(low, high),
                velocity=speed * np.array(
                    [math.cos(heading), math.sin(heading)]),
                radii=np.exp(reflect(log_r + growth * t, log_low, log_high)),
                angles=rng.uniform(0.0, 2 * np.pi) + spin * t))
    if num_instances >= 2 and rng.random() < settings.occlusion_prob:
        # Aim the front object of a random pair at where the back object is
        # at a middle frame; ``reflect`` leaves in-range points unchanged, so
        # the unbounded start below makes the two paths meet there.
        back, front = np.sort(rng.choice(num_instances, 2, replace=False))
        meet = int(
            rng.integers(num_frames // 4, max(num_frames - num_frames // 4,
                                              1)))
        target = reflect(
            tracks[back]['start'] + tracks[back]['velocity'] * meet, low, high)
        reach = tracks[back]['radii'][meet] + tracks[front]['radii'][meet]
        offset_dir = rng.uniform(0.0, 2 * np.pi)
        offset = (
            rng.uniform(0.0, settings.occlusion_offset) * reach *
            np.array([math.cos(offset_dir),
                      math.sin(offset_dir)]))
        tracks[front]['start'] = (
            target + offset - tracks[front]['velocity'] * meet)
    for track in tracks:
        track['centers'] = reflect(
            track['start'] + track['velocity'] * t[:, None], low, high)
    return tracks


def _draw_presence(settings: SyntheticVISSettings, rng: np.random.Generator,
                   num_instances: int, num_frames: int) -> np.ndarray:
    """(K, T) bool presence; the first object is always present."""
    present = np.ones((num_instances, num_frames), bool)
    for k in range(1, num_instances):
        if num_frames >= 2 and rng.random() < settings.partial_track_prob:
            length = int(rng.integers(math.ceil(num_frames / 2), num_frames))
            start = int(rng.integers(num_frames - length + 1))
            present[k] = False
            present[k, start:start + length] = True
    return present


def sample_scene(settings: SyntheticVISSettings,
                 rng: np.random.Generator) -> VideoScene:
    """Draw one video: size, length, background, camera and objects.

    Args:
        settings (SyntheticVISSettings): Generator settings.
        rng (np.random.Generator): The video's own random generator.

    Returns:
        VideoScene: The video to render.
    """
    num_frames = int(
        rng.integers(settings.num_frames[0], settings.num_frames[1] + 1))
    div = settings.size_divisor
    height = div * int(
        rng.integers(
            math.ceil(settings.frame_height[0] / div),
            settings.frame_height[1] // div + 1))
    aspect = rng.uniform(*settings.aspect_ratio)
    width = max(div, div * round(height * aspect / div))

    pad = math.ceil(settings.camera_speed * (num_frames - 1)) + 1
    background = _draw_background(settings, rng, height + 2 * pad,
                                  width + 2 * pad)
    pan = rng.uniform(-settings.camera_speed, settings.camera_speed, 2)
    camera = pad + np.round(np.arange(num_frames)[:, None] * pan).astype(
        np.int64)
    background_mean = background.mean(axis=(0, 1))

    num_instances = int(
        rng.integers(settings.num_instances[0], settings.num_instances[1] + 1))
    labels = rng.integers(len(settings.classes), size=num_instances)
    instances = []
    for label in labels:
        outline = SHAPES[settings.classes[label]](rng)
        texture = _draw_texture(settings, rng, background_mean)
        instances.append((int(label), outline, texture))
    tracks = _draw_tracks(settings, rng, num_instances, height, width,
                          num_frames)
    present = _draw_presence(settings, rng, num_instances, num_frames)
    noise_std = float(rng.uniform(*settings.noise_std))
    return VideoScene(
        height=height,
        width=width,
        num_frames=num_frames,
        background=background,
        camera=camera,
        noise_std=noise_std,
        instances=[
            InstanceTrack(
                label=label,
                outline=outline,
                texture=texture,
                centers=track['centers'],
                radii=track['radii'],
                angles=track['angles'],
                present=present[k])
            for k, ((label, outline, texture),
                    track) in enumerate(zip(instances, tracks))
        ])


# texture pixel (u, v) -> canonical (x, y): pixel centres spread over [-1, 1]
_TEXTURE_TO_CANONICAL = np.array([[2 / TEXTURE_SIZE, 0, 1 / TEXTURE_SIZE - 1],
                                  [0, 2 / TEXTURE_SIZE, 1 / TEXTURE_SIZE - 1],
                                  [0, 0, 1]])


def render_scene(scene: VideoScene, rng: np.random.Generator) -> RenderedVideo:
    """Render the frames and masks of a scene.

    Args:
        scene (VideoScene): The video to render.
        rng (np.random.Generator): Random generator for the pixel noise.

    Returns:
        RenderedVideo: Frames, amodal and visible masks, labels.
    """
    h, w, num_frames = scene.height, scene.width, scene.num_frames
    num_instances = len(scene.instances)
    frames = np.empty((num_frames, h, w, 3), np.uint8)
    amodal = np.zeros((num_frames, num_instances, h, w), bool)
    for t in range(num_frames):
        x0, y0 = scene.camera[t]
        frame = scene.background[y0:y0 + h, x0:x0 + w].copy()
        # paint back to front, so later objects cover earlier ones
        for k, inst in enumerate(scene.instances):
            if not inst.present[t]:
                continue
            affine = canonical_to_frame(inst.centers[t], inst.radii[t],
                                        inst.angles[t])
            mask = rasterize(inst.outline, affine, h, w)
            if not mask.any():
                continue
            warp = affine @ _TEXTURE_TO_CANONICAL
            # ``warp`` maps texture pixels to frame pixels (source to
            # destination), which is what warpAffine expects by default
            texture = cv2.warpAffine(
                inst.texture,
                warp, (w, h),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REFLECT)
            frame[mask] = texture[mask]
            amodal[t, k] = mask
        frame += rng.normal(0.0, scene.noise_std, frame.shape)
        frames[t] = np.clip(np.round(frame), 0, 255).astype(np.uint8)
    # covered[:, k]: union of the masks of objects k+1..K-1 (in front of k)
    covered = np.zeros_like(amodal)
    if num_instances > 1:
        in_front = np.logical_or.accumulate(amodal[:, :0:-1], axis=1)[:, ::-1]
        covered[:, :-1] = in_front
    return RenderedVideo(
        frames=frames,
        amodal=amodal,
        visible=amodal & ~covered,
        labels=np.array([inst.label for inst in scene.instances], np.int64))
