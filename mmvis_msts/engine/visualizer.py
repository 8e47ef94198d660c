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

    def _draw_instances(self, image: np.ndarray,
                        instances: InstanceData) -> np.ndarray:
        """Draw ``instances`` on ``image``.

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
        ids = (
            instances.instances_id
            if 'instances_id' in instances else instances.instances_ids)
        colors = [track_color(int(i)) for i in ids]
        classes = self.dataset_meta.get('classes')
        texts = [
            f'{classes[int(label)] if classes else f"cls{int(label)}"} '
            f'{int(i)}' for label, i in zip(instances.labels, ids)
        ]
        if 'scores' in instances:
            texts = [
                f'{text} | {float(score):.2f}'
                for text, score in zip(texts, instances.scores)
            ]
        if 'masks' in instances:
            masks = instances.masks
            masks = (
                masks.to_ndarray() if hasattr(masks, 'to_ndarray') else
                torch.as_tensor(masks).cpu().numpy())
            self.draw_binary_masks(
                masks.astype(bool), colors=colors, alphas=self.alpha)
        if 'bboxes' in instances:
            bboxes = torch.as_tensor(instances.bboxes).cpu()
            self.draw_bboxes(
                bboxes, edge_colors=colors, line_widths=self.line_width)
            self.draw_texts(
                texts,
                bboxes[:, :2] + self.line_width,
                colors=colors,
                font_sizes=8)
        return self.get_image()
