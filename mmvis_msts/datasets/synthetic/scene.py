"""Sampling and rendering of one synthetic video.

A video is a :class:`VideoScene` (drawn from the settings with one random
generator) that :func:`render_scene` turns into frames and per-instance
masks. Instances are listed back to front: a later instance hides the
earlier ones where they overlap, and the hidden pixels are removed from the
earlier instances' visible masks. With motion blur an object is composited
with its smeared opacity, while its masks stay the unblurred shape.
"""
import math
from dataclasses import dataclass
from typing import List, Optional

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

#: Frames an object takes to leave the view (and to come back) for
#: ``reentry_prob``, as a fraction of the video's frames.
_REENTRY_SLIDE = 0.1

#: Outward unit normal of each frame border: left, right, top, bottom.
_BORDER_NORMALS = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])


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
            from the video (late entry, early exit, or out of view between
            leaving and coming back).
        texture_end (np.ndarray | None): Texture at the last frame; the
            texture blends linearly from ``texture`` to it over the video.
            None keeps ``texture``. Defaults to None.
        stretches (np.ndarray | None): (T,) log aspect ratio of the object's
            own axes per frame (see :func:`canonical_to_frame`). None for an
            unstretched shape. Defaults to None.
    """

    label: int
    outline: Outline
    texture: np.ndarray
    centers: np.ndarray
    radii: np.ndarray
    angles: np.ndarray
    present: np.ndarray
    texture_end: Optional[np.ndarray] = None
    stretches: Optional[np.ndarray] = None


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
        motion_blur (float): Exposure time as a fraction of the frame
            interval (see ``SyntheticVISSettings.motion_blur``).
            Defaults to 0.0.
    """

    height: int
    width: int
    num_frames: int
    background: np.ndarray
    camera: np.ndarray
    noise_std: float
    instances: List[InstanceTrack]
    motion_blur: float = 0.0


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


def _coin(rng: np.random.Generator, prob: float) -> bool:
    """A draw that is True with probability ``prob``; at 0 it leaves the
    generator alone, so that a setting that is off keeps the random stream,
    and so the video, of the generator version it was added to."""
    return prob > 0 and rng.random() < prob


def _leave_view(centers: np.ndarray, extent: np.ndarray, start: int, stop: int,
                slide: int, height: int, width: int) -> np.ndarray:
    """Centres that leave the view for frames ``[start, stop)``.

    The object slides out over the border nearest to it when it starts to
    leave, ``slide`` frames before ``start``, is out of view on the gap and
    slides back in over the same border in ``slide`` frames after it, while
    following its own path all along.

    Args:
        centers (np.ndarray): (T, 2) centres (x, y) of the object's path.
        extent (np.ndarray): (T,) radius in pixels of a disc around the
            centre that holds the shape.
        start (int): First frame out of view, >= ``slide``.
        stop (int): Frame after the last one out of view,
            <= T - ``slide``.
        slide (int): Frames of leaving and of coming back, >= 1.
        height (int): Frame height H.
        width (int): Frame width W.

    Returns:
        np.ndarray: (T, 2) shifted centres.
    """
    t = np.arange(len(centers))
    # 1 on the gap, falling linearly to 0 over the slides on either side
    frames_away = np.maximum(np.maximum(start - t, t - (stop - 1)), 0)
    weight = np.clip(1.0 - frames_away / (slide + 1), 0.0, 1.0)
    x, y = centers[:, 0], centers[:, 1]
    # pixel centres span [0, W - 1], so the frame edges are at -0.5, W - 0.5
    to_border = np.stack([x + 0.5, width - 0.5 - x, y + 0.5, height - 0.5 - y],
                         axis=1)
    side = int(np.argmin(to_border[start - slide]))
    # past the border by the shape's extent and a pixel: no pixel centre
    # is covered, whatever the shape
    out = to_border[:, side] + extent + 1.0
    return centers + (weight * out)[:, None] * _BORDER_NORMALS[side]


def _draw_reentry(settings: SyntheticVISSettings, rng: np.random.Generator,
                  tracks: List[dict], present: np.ndarray, height: int,
                  width: int) -> None:
    """Send some objects out of view and back (``reentry_prob``), in place:
    their centres leave the view and ``present`` is False on the gap."""
    num_frames = present.shape[1]
    slide = max(1, round(_REENTRY_SLIDE * num_frames))
    # room for the gap, both slides and a frame in view at either end
    longest = num_frames - 2 * slide - 2
    if longest < 1:
        return
    for k in range(1, len(tracks)):
        if not present[k].all() or not _coin(rng, settings.reentry_prob):
            continue
        gap = round(rng.uniform(*settings.reentry_gap) * num_frames)
        gap = min(max(gap, 1), longest)
        start = int(rng.integers(slide + 1, num_frames - gap - slide))
        present[k, start:start + gap] = False
        # outlines fit the unit disc; a stretch lengthens one axis by at
        # most exp(shape_stretch / 2)
        extent = tracks[k]['radii'] * math.exp(settings.shape_stretch / 2)
        tracks[k]['centers'] = _leave_view(tracks[k]['centers'], extent, start,
                                           start + gap, slide, height, width)


def _draw_texture_ends(
        settings: SyntheticVISSettings, rng: np.random.Generator,
        num_instances: int,
        background_mean: np.ndarray) -> List[Optional[np.ndarray]]:
    """Last-frame texture of each object (``texture_change_prob``), drawn
    like the first one, or None for an object that keeps its texture."""
    ends = []
    for _ in range(num_instances):
        change = _coin(rng, settings.texture_change_prob)
        ends.append(
            _draw_texture(settings, rng, background_mean) if change else None)
    return ends


def _draw_stretches(settings: SyntheticVISSettings, rng: np.random.Generator,
                    num_instances: int, num_frames: int) -> np.ndarray:
    """(K, T) log aspect ratio of each object: linear from 0 at the first
    frame to a value drawn from ``[-shape_stretch, shape_stretch]``."""
    if settings.shape_stretch == 0:
        return np.zeros((num_instances, num_frames))
    ends = rng.uniform(-settings.shape_stretch, settings.shape_stretch,
                       num_instances)
    return ends[:, None] * np.linspace(0.0, 1.0, num_frames)


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
    # the settings added after generator version 1 draw from here on, in
    # the order of their attributes and only when on (see ``_coin``)
    _draw_reentry(settings, rng, tracks, present, height, width)
    texture_ends = _draw_texture_ends(settings, rng, num_instances,
                                      background_mean)
    stretches = _draw_stretches(settings, rng, num_instances, num_frames)
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
                present=present[k],
                texture_end=texture_ends[k],
                stretches=stretches[k])
            for k, ((label, outline, texture),
                    track) in enumerate(zip(instances, tracks))
        ],
        motion_blur=settings.motion_blur)


# texture pixel (u, v) -> canonical (x, y): pixel centres spread over [-1, 1]
_TEXTURE_TO_CANONICAL = np.array([[2 / TEXTURE_SIZE, 0, 1 / TEXTURE_SIZE - 1],
                                  [0, 2 / TEXTURE_SIZE, 1 / TEXTURE_SIZE - 1],
                                  [0, 0, 1]])


def _texture_at(inst: InstanceTrack, t: int, num_frames: int) -> np.ndarray:
    """The object's texture at frame ``t`` (see ``texture_end``)."""
    if inst.texture_end is None:
        return inst.texture
    weight = t / max(num_frames - 1, 1)
    return (1.0 - weight) * inst.texture + weight * inst.texture_end


def _velocities(centers: np.ndarray) -> np.ndarray:
    """(T, 2) displacement of the centre per frame (central differences)."""
    if len(centers) < 2:
        return np.zeros_like(centers)
    return np.gradient(centers, axis=0)


def _line_kernel(smear: np.ndarray) -> np.ndarray:
    """Normalised filter kernel of a uniform segment.

    Args:
        smear (np.ndarray): (2,) the segment (x, y) in pixels; the kernel
            spreads a pixel evenly from ``-smear / 2`` to ``smear / 2``.

    Returns:
        np.ndarray: (N, N) float32 kernel, N odd, symmetric about its
        centre (so correlation, which cv2.filter2D computes, is the
        convolution).
    """
    length = float(np.hypot(*smear))
    half = math.ceil(length / 2) + 1
    # samples every half pixel, splatted bilinearly for sub-pixel lengths
    steps = np.linspace(-0.5, 0.5, 2 * math.ceil(length) + 1)
    points = steps[:, None] * smear + half
    base = np.floor(points).astype(np.int64)
    frac = points - base
    kernel = np.zeros((2 * half + 1, 2 * half + 1), np.float32)
    for dx in (0, 1):
        for dy in (0, 1):
            wx = frac[:, 0] if dx else 1.0 - frac[:, 0]
            wy = frac[:, 1] if dy else 1.0 - frac[:, 1]
            np.add.at(kernel, (base[:, 1] + dy, base[:, 0] + dx), wx * wy)
    return kernel / kernel.sum()


def _paint(frame: np.ndarray, texture: np.ndarray, mask: np.ndarray,
           smear: np.ndarray) -> None:
    """Paint an object into ``frame`` in place.

    Args:
        frame (np.ndarray): (H, W, 3) float32 frame.
        texture (np.ndarray): (H, W, 3) the object's texture in the frame.
        mask (np.ndarray): (H, W) bool pixels the object covers.
        smear (np.ndarray): (2,) motion blur segment (x, y) in pixels; zero
            paints the mask's pixels as they are.
    """
    if not smear.any():
        frame[mask] = texture[mask]
        return
    # blurring the premultiplied colour and the opacity together gives the
    # time average of the moving object over the exposure
    alpha = mask.astype(np.float32)[..., None]
    layer = cv2.filter2D(
        np.concatenate([texture * alpha, alpha], axis=2),
        -1,
        _line_kernel(smear),
        borderType=cv2.BORDER_CONSTANT)
    frame *= 1.0 - layer[..., 3:]
    frame += layer[..., :3]


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
    smears = [
        scene.motion_blur * _velocities(inst.centers)
        for inst in scene.instances
    ]
    for t in range(num_frames):
        x0, y0 = scene.camera[t]
        frame = scene.background[y0:y0 + h, x0:x0 + w].copy()
        # paint back to front, so later objects cover earlier ones
        for k, inst in enumerate(scene.instances):
            if not inst.present[t]:
                continue
            stretch = 0.0 if inst.stretches is None else inst.stretches[t]
            affine = canonical_to_frame(inst.centers[t], inst.radii[t],
                                        inst.angles[t], stretch)
            mask = rasterize(inst.outline, affine, h, w)
            if not mask.any():
                continue
            warp = affine @ _TEXTURE_TO_CANONICAL
            # ``warp`` maps texture pixels to frame pixels (source to
            # destination), which is what warpAffine expects by default
            texture = cv2.warpAffine(
                _texture_at(inst, t, num_frames),
                warp, (w, h),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REFLECT)
            _paint(frame, texture, mask, smears[k][t])
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
