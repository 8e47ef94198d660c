"""Track visualizer for VIS results and ground truth."""
import colorsys
from typing import Tuple

import numpy as np
import torch
from mmdet.registry import VISUALIZERS
from mmdet.visualization import TrackLocalVisualizer
from mmengine.structures import InstanceData


def track_color(track_id: int) -> Tuple[int, int, int]:
    """A stable, well-separated RGB colour for a track id.

    Hues step by the golden ratio, so consecutive ids get distant colours.
    """
    hue = (track_id * 0.618033988749895) % 1.0
    return tuple(int(255 * c) for c in colorsys.hsv_to_rgb(hue, 0.75, 0.95))


def _track_ids(instances: InstanceData):
    """Track ids of predictions (``instances_id``) or GT (``instances_ids``,
    as ``PackTrackInputs`` names them)."""
    return (instances.instances_id
            if 'instances_id' in instances else instances.instances_ids)


def stack_labels(anchors: np.ndarray, widths: np.ndarray, line_height: float,
                 order: np.ndarray, frame_size: Tuple[int, int]) -> np.ndarray:
    """Top-left corners for N labels such that no two overlap.

    Each label starts at its anchor, moved inside the frame; one that would
    overlap a label placed before it moves down a line at a time (back to
    its start if it reaches the bottom of the frame).

    Args:
        anchors (np.ndarray): (N, 2) wanted top-left corners (x, y).
        widths (np.ndarray): (N,) label widths in pixels.
        line_height (float): Height of one label in pixels.
        order (np.ndarray): (N,) indices, the label placed first first.
        frame_size (tuple[int, int]): (H, W) of the frame.

    Returns:
        np.ndarray: (N, 2) top-left corners (x, y), in the input order.
    """
    height, width = frame_size
    widths = np.minimum(widths, width)
    positions = np.zeros((len(anchors), 2))
    placed = []
    for j in order:
        x = float(np.clip(anchors[j, 0], 0, width - widths[j]))
        y = start_y = float(
            np.clip(anchors[j, 1], 0, max(height - line_height, 0)))
        while any(x < px + pw and px < x + widths[j] and y < py +
                  line_height and py < y + line_height
                  for px, py, pw in placed):
            y += line_height
            if y + line_height > height:
                y = start_y
                break
        placed.append((x, y, widths[j]))
        positions[j] = x, y
    return positions


@VISUALIZERS.register_module()
class VISLocalVisualizer(TrackLocalVisualizer):
    """Draws track masks, boxes and ``class id | score`` labels per frame.

    Replaces ``TrackLocalVisualizer._draw_instances`` of mmdet 3.3, which
    cannot be used for VIS here: it reads track ids only as ``instances_id``
    while ground truth packed by ``PackTrackInputs`` names them
    ``instances_ids`` (``AttributeError`` as soon as
    ``TrackVisualizationHook`` draws an annotated frame, e.g. ``tools/test.py
    --show-dir``), and it imports seaborn (not a dependency) for colours.
    ``add_datasample`` (GT left, prediction right) is mmdet's.
    """

    # Label font size in points per pixel of the frame's short side (the
    # figure is at 100 dpi: 1 pt = 1.39 px), and its smallest value.
    FONT_SIZE_PER_PIXEL = 1 / 40
    MIN_FONT_SIZE = 5

    def _draw_instances(self, image: np.ndarray,
                        instances: InstanceData) -> np.ndarray:
        """Draw ``instances`` on ``image``.

        Instances whose mask is empty in this frame (a track absent from
        it) are not drawn. Each label (``class #id score``) sits on a dark
        box at the top left of its object's box, inside the frame; a label
        that would cover one already placed (several tracks on one object)
        moves down to the next free line, highest scores placed first.

        Args:
            image (np.ndarray): (H, W, 3) RGB frame.
            instances (InstanceData): Ground truth (``instances_ids``,
                ``labels``, optional ``bboxes`` (N, 4) and ``masks``
                BitmapMasks) or predictions (``instances_id``, ``labels``,
                ``scores``, ``bboxes``, ``masks`` (N, H, W)).

        Returns:
            np.ndarray: The drawn (H, W, 3) RGB frame.
        """
        self.set_image(image)
        if len(instances) == 0:
            return self.get_image()
        ids = _track_ids(instances)
        keep = np.arange(len(instances))
        masks = None
        if 'masks' in instances:
            masks = instances.masks
            masks = (masks.to_ndarray() if hasattr(masks, 'to_ndarray') else
                     torch.as_tensor(masks).cpu().numpy()).astype(bool)
            keep = np.flatnonzero(masks.reshape(len(masks), -1).any(1))
            masks = masks[keep]
        colors = [track_color(int(ids[i])) for i in keep]
        if masks is not None and len(keep):
            self.draw_binary_masks(masks, colors=colors, alphas=self.alpha)
        if 'bboxes' in instances and len(keep):
            height, width = image.shape[:2]
            # xyxy with exclusive right/bottom edges -> last pixel inside
            bboxes = torch.as_tensor(instances.bboxes).cpu()[keep].float()
            bboxes[:, 0::2] = bboxes[:, 0::2].clamp(0, width - 1)
            bboxes[:, 1::2] = bboxes[:, 1::2].clamp(0, height - 1)
            self.draw_bboxes(
                bboxes, edge_colors=colors, line_widths=self.line_width)
            self._draw_labels(instances, keep, bboxes.numpy(), colors)
        return self.get_image()

    def _draw_labels(self, instances: InstanceData, keep: np.ndarray,
                     bboxes: np.ndarray, colors: list) -> None:
        """Draw the labels of ``instances[keep]`` without overlaps.

        Args:
            instances (InstanceData): See :meth:`_draw_instances`.
            keep (np.ndarray): (N,) indices of the drawn instances.
            bboxes (np.ndarray): (N, 4) xyxy boxes of those.
            colors (list[tuple]): N RGB colours.
        """
        ids = _track_ids(instances)
        classes = self.dataset_meta.get('classes')
        texts = []
        for i in keep:
            label = int(instances.labels[i])
            name = classes[label] if classes else f'cls{label}'
            text = f'{name} #{int(ids[i])}'
            if 'scores' in instances:
                text += f' {float(instances.scores[i]):.2f}'
            texts.append(text)
        height, width = self.get_image().shape[:2]
        font_size = max(self.MIN_FONT_SIZE,
                        round(min(height, width) * self.FONT_SIZE_PER_PIXEL))
        font_px = font_size * self.dpi / 72
        # rough extent of each label and its box, in pixels
        widths = np.array([0.62 * font_px * len(t) + 2 for t in texts])
        order = np.arange(len(keep))
        if 'scores' in instances:
            scores = torch.as_tensor(instances.scores).cpu().numpy()[keep]
            order = np.argsort(-scores, kind='stable')
        positions = stack_labels(bboxes[:, :2], widths, 1.4 * font_px, order,
                                 (height, width))
        self.draw_texts(
            texts,
            positions,
            colors=colors,
            font_sizes=font_size,
            bboxes=[
                dict(facecolor='black', alpha=0.6, pad=0.5, edgecolor='none')
            ] * len(texts))
