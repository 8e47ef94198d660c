"""Synthetic video frames shared by the inference and deployment tests."""
from typing import List, Tuple

import cv2
import numpy as np

Frames = List[np.ndarray]


def moving_shapes(num_frames: int, size: Tuple[int, int] = (64, 96)) -> Frames:
    """Frames (H, W, 3) BGR of a disc and a square moving apart."""
    h, w = size
    frames = []
    for t in range(num_frames):
        frame = np.full((h, w, 3), 40, dtype=np.uint8)
        cv2.circle(frame, (20 + 6 * t, 30), 12, (0, 190, 250), -1)
        cv2.rectangle(frame, (60 - 4 * t, 10), (80 - 4 * t, 30), (250, 90, 0),
                      -1)
        frames.append(frame)
    return frames
