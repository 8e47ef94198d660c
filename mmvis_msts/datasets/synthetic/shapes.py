"""Shape classes of the synthetic VIS data set and their rasterisation.

A shape is an outline in canonical coordinates that fits in the unit disc,
plus an optional hole. Each instance draws its own shape parameters once
(e.g. the aspect of its ellipse), so that it keeps its look over the video.
"""
from typing import Callable, Dict, NamedTuple, Optional

import cv2
import numpy as np

# cv2.fillPoly takes fixed-point vertices with this many fractional bits,
# which places edges with sub-pixel precision.
_SHIFT = 4


class Outline(NamedTuple):
    """Polygon outline of a shape in canonical coordinates (unit disc).

    Attributes:
        outer (np.ndarray): (P, 2) float vertices (x, y) of the boundary.
        hole (np.ndarray | None): (P', 2) float vertices of a hole, or None.
    """

    outer: np.ndarray
    hole: Optional[np.ndarray] = None


def _ellipse(rx: float, ry: float, num_points: int = 48) -> np.ndarray:
    t = np.linspace(0.0, 2 * np.pi, num_points, endpoint=False)
    return np.stack([rx * np.cos(t), ry * np.sin(t)], axis=1)


def circle(rng: np.random.Generator) -> Outline:
    """An ellipse close to a circle (minor/major axis in [0.8, 1])."""
    return Outline(_ellipse(1.0, rng.uniform(0.8, 1.0)))


def ring(rng: np.random.Generator) -> Outline:
    """A near-circular ellipse with a concentric hole of 45-60% its size."""
    aspect = rng.uniform(0.85, 1.0)
    hole = rng.uniform(0.45, 0.6)
    return Outline(_ellipse(1.0, aspect), _ellipse(hole, hole * aspect))


def triangle(rng: np.random.Generator) -> Outline:
    """A roughly equilateral triangle with jittered vertices."""
    angles = (
        np.pi / 2 + 2 * np.pi / 3 * np.arange(3) + rng.uniform(-0.2, 0.2, 3))
    radii = rng.uniform(0.85, 1.0, 3)
    return Outline(
        np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1))


def square(rng: np.random.Generator) -> Outline:
    """A rectangle with side ratio in [0.7, 1] and corners on the unit
    circle."""
    aspect = rng.uniform(0.7, 1.0)
    half_w = 1.0 / np.sqrt(1.0 + aspect**2)
    half_h = aspect * half_w
    return Outline(
        np.array([[-half_w, -half_h], [half_w, -half_h], [half_w, half_h],
                  [-half_w, half_h]]))


def star(rng: np.random.Generator) -> Outline:
    """A five-pointed star with an inner radius of 0.38-0.5."""
    angles = np.pi / 2 + np.pi / 5 * np.arange(10)
    radii = np.where(np.arange(10) % 2 == 0, 1.0, rng.uniform(0.38, 0.5))
    return Outline(
        np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1))


def cross(rng: np.random.Generator) -> Outline:
    """A plus sign whose arms are 50-70% as wide as they are long."""
    w = rng.uniform(0.25, 0.35)
    quarter = np.array([[1.0, -w], [1.0, w], [w, w]])
    rot = np.array([[0.0, -1.0], [1.0, 0.0]])  # 90 degrees
    pts = np.concatenate(
        [quarter @ np.linalg.matrix_power(rot, k).T for k in range(4)])
    # the arm corners lie at radius sqrt(1 + w^2): scale into the unit disc
    return Outline(pts / np.sqrt(1.0 + w**2))


#: Shape name -> function drawing an instance's outline from an rng.
SHAPES: Dict[str, Callable[[np.random.Generator], Outline]] = dict(
    circle=circle,
    triangle=triangle,
    square=square,
    star=star,
    ring=ring,
    cross=cross)


def canonical_to_frame(center: np.ndarray,
                       radius: float,
                       angle: float,
                       stretch: float = 0.0) -> np.ndarray:
    """Affine map from canonical coordinates to frame pixels.

    Args:
        center (np.ndarray): (2,) centre (x, y) in pixels.
        radius (float): Radius in pixels of the unit disc.
        angle (float): Rotation in radians.
        stretch (float): Log aspect ratio: the canonical x and y axes scale
            by ``exp(stretch / 2)`` and ``exp(-stretch / 2)`` before the
            rotation, which keeps the area. Defaults to 0.0.

    Returns:
        np.ndarray: (2, 3) matrix ``A`` with ``p_frame = A @ [x, y, 1]``.
    """
    c, s = np.cos(angle), np.sin(angle)
    # scaling the columns scales the canonical axes; by exp(0) = 1 exactly
    # when unstretched, which leaves the map as it was without the stretch
    axes = np.exp([stretch / 2, -stretch / 2])
    linear = radius * np.array([[c, -s], [s, c]]) * axes
    return np.concatenate([linear, center[:, None]], axis=1)


def rasterize(outline: Outline, affine: np.ndarray, height: int,
              width: int) -> np.ndarray:
    """Fill an outline mapped into the frame.

    Args:
        outline (Outline): Shape in canonical coordinates.
        affine (np.ndarray): (2, 3) canonical-to-frame map.
        height (int): Frame height H.
        width (int): Frame width W.

    Returns:
        np.ndarray: (H, W) bool mask of the pixels whose centres the shape
        covers.
    """
    mask = np.zeros((height, width), np.uint8)
    for polygon, value in ((outline.outer, 1), (outline.hole, 0)):
        if polygon is None:
            continue
        pts = polygon @ affine[:, :2].T + affine[:, 2]
        fixed = np.round(pts * (1 << _SHIFT)).astype(np.int32)
        cv2.fillPoly(mask, [fixed], value, lineType=cv2.LINE_8, shift=_SHIFT)
    return mask.astype(bool)
