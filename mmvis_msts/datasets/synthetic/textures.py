"""Procedural two-colour textures for objects and backgrounds.

Every texture kind blends two colours with a weight map in [0, 1]; the kinds
differ only in the weight map. Images are float32 (H, W, 3) in [0, 255].
"""
from typing import Callable, Dict, Tuple

import cv2
import numpy as np

WeightFn = Callable[[np.random.Generator, int, int], np.ndarray]


def _rotated_coords(rng: np.random.Generator, height: int,
                    width: int) -> Tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates rotated by a random angle, each (H, W)."""
    angle = rng.uniform(0.0, np.pi)
    y, x = np.mgrid[:height, :width].astype(np.float32)
    c, s = np.cos(angle), np.sin(angle)
    return c * x + s * y, -s * x + c * y


def solid(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Mostly the first colour with a soft shading towards the second."""
    return 0.3 * gradient(rng, height, width)


def gradient(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A linear ramp between the colours in a random direction."""
    u, _ = _rotated_coords(rng, height, width)
    return (u - u.min()) / max(float(np.ptp(u)), 1e-6)


def stripes(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Soft stripes with a period of 1/8 to 1/3 of the texture size."""
    u, _ = _rotated_coords(rng, height, width)
    period = rng.uniform(1 / 8, 1 / 3) * min(height, width)
    phase = rng.uniform(0.0, 2 * np.pi)
    # a steep sigmoid of the sine gives stripes with slightly soft edges
    return 1.0 / (1.0 + np.exp(-4.0 * np.sin(2 * np.pi * u / period + phase)))


def checker(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A rotated checkerboard with cells of 1/8 to 1/4 of the texture size."""
    u, v = _rotated_coords(rng, height, width)
    cell = rng.uniform(1 / 8, 1 / 4) * min(height, width)
    return ((np.floor(u / cell) + np.floor(v / cell)) % 2).astype(np.float32)


def noise(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Multi-octave value noise (blotches of several sizes)."""
    total = np.zeros((height, width), np.float32)
    base = max(height, width) / 2
    for octave in range(4):
        cell = max(base / 2**octave, 2.0)
        gh = int(np.ceil(height / cell)) + 2
        gw = int(np.ceil(width / cell)) + 2
        grid = rng.random((gh, gw), dtype=np.float32)
        up = cv2.resize(
            grid, (int(gw * cell), int(gh * cell)),
            interpolation=cv2.INTER_CUBIC)
        total += up[:height, :width] * 0.6**octave
    total -= total.min()
    return total / max(float(total.max()), 1e-6)


#: Texture kind -> function drawing a (H, W) weight map in [0, 1].
TEXTURES: Dict[str, WeightFn] = dict(
    solid=solid,
    stripes=stripes,
    checker=checker,
    gradient=gradient,
    noise=noise)


def draw_colours(rng: np.random.Generator,
                 contrast: Tuple[float, float]) -> np.ndarray:
    """Draw a random colour and a second one at a random distance from it.

    Args:
        rng (np.random.Generator): Random generator.
        contrast (tuple[float, float]): Range of the RGB distance between the
            two colours (the second is clipped to the RGB cube, which can
            shorten the distance).

    Returns:
        np.ndarray: (2, 3) float32 colours in [0, 255].
    """
    first = rng.uniform(0.0, 255.0, 3)
    direction = rng.normal(size=3)
    direction /= max(float(np.linalg.norm(direction)), 1e-6)
    second = np.clip(first + rng.uniform(*contrast) * direction, 0.0, 255.0)
    return np.stack([first, second]).astype(np.float32)


def blend(weight: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """Blend two colours with a weight map.

    Args:
        weight (np.ndarray): (H, W) weights in [0, 1] of the second colour.
        colours (np.ndarray): (2, 3) colours.

    Returns:
        np.ndarray: (H, W, 3) float32 image in [0, 255].
    """
    weight = weight[..., None].astype(np.float32)
    return (1.0 - weight) * colours[0] + weight * colours[1]
