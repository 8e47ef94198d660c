"""VISLocalVisualizer draws GT and predicted tracks without seaborn."""
import mmcv
import numpy as np
import torch
from mmdet.registry import VISUALIZERS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData

import mmvis_msts  # noqa: F401  (registers VISLocalVisualizer)
from mmvis_msts.engine.visualizer import (VISLocalVisualizer, stack_labels,
                                          track_color)

H, W = 32, 48


def box_masks() -> np.ndarray:
    masks = np.zeros((2, H, W), dtype=bool)
    masks[0, 2:12, 3:20] = True
    masks[1, 16:30, 25:45] = True
    return masks


def test_track_colors_are_stable_and_distinct():
    assert track_color(7) == track_color(7)
    colors = [track_color(i) for i in range(10)]
    assert len(set(colors)) == 10
    assert all(0 <= c <= 255 for color in colors for c in color)


def test_draws_ground_truth_and_predictions(tmp_path):
    # other tests may leave mmengine's scope as the default
    with DefaultScope.overwrite_default_scope('mmdet'):
        visualizer = VISUALIZERS.build(
            dict(type='VISLocalVisualizer', name='test_vis_visualizer'))
    assert isinstance(visualizer, VISLocalVisualizer)
    visualizer.dataset_meta = dict(classes=('person', 'dog'))
    image = np.zeros((H, W, 3), dtype=np.uint8)
    masks = box_masks()
    frame = DetDataSample()
    # ground truth as PackTrackInputs packs it: ids named instances_ids
    frame.gt_instances = InstanceData(
        labels=torch.tensor([0, 1]),
        instances_ids=torch.tensor([3, 4]),
        bboxes=torch.tensor([[3., 2., 20., 12.], [25., 16., 45., 30.]]),
        masks=BitmapMasks(masks.astype(np.uint8), H, W))
    frame.pred_track_instances = InstanceData(
        labels=torch.tensor([1]),
        instances_id=torch.tensor([0]),
        scores=torch.tensor([0.9]),
        bboxes=torch.tensor([[25., 16., 45., 30.]]),
        masks=torch.from_numpy(masks[1:]))
    out_file = str(tmp_path / 'frame.png')
    visualizer.add_datasample(
        'frame', image, data_sample=frame, out_file=out_file)
    drawn = mmcv.imread(out_file, channel_order='rgb').astype(int)
    # GT on the left, prediction on the right
    assert drawn.shape == (H, 2 * W, 3)
    gt, pred = drawn[:, :W], drawn[:, W:]
    # mask interiors (away from box edges and labels) took their track's
    # colour, alpha-blended on black
    interiors = [(slice(8, 11), slice(6, 18)), (slice(24, 28), slice(28, 43))]
    for (rows, cols), track_id in zip(interiors, (3, 4)):
        colour = gt[rows, cols].reshape(-1, 3).mean(0)
        assert np.argmax(colour) == np.argmax(track_color(track_id))
        assert colour.max() > 100
    rows, cols = interiors[1]
    colour = pred[rows, cols].reshape(-1, 3).mean(0)
    assert np.argmax(colour) == np.argmax(track_color(0))
    # the first GT object was not predicted: nothing drawn there
    rows, cols = interiors[0]
    assert pred[rows, cols].max() == 0


def test_empty_instances_leave_the_frame_unchanged():
    visualizer = VISLocalVisualizer(name='test_vis_visualizer_empty')
    image = np.full((H, W, 3), 17, dtype=np.uint8)
    empty = InstanceData(
        labels=torch.zeros(0, dtype=torch.long),
        instances_id=torch.zeros(0, dtype=torch.long))
    np.testing.assert_array_equal(
        visualizer._draw_instances(image, empty), image)


def test_stacked_labels_do_not_overlap():
    anchors = np.array([[10., 20.], [10., 20.], [10., 20.], [200., 5.]])
    widths = np.array([50., 50., 50., 40.])
    # label 2 scores highest, then 0, then 1; label 3 stands alone
    positions = stack_labels(anchors, widths, 10., np.array([2, 0, 1, 3]),
                             (100, 220))
    np.testing.assert_array_equal(
        positions, [[10., 30.], [10., 40.], [10., 20.], [180., 5.]])
    # no room below the bottom line: back to the anchor
    positions = stack_labels(anchors[:2], widths[:2], 10., np.arange(2),
                             (25, 220))
    np.testing.assert_array_equal(positions, [[10., 15.], [10., 15.]])


def test_tracks_absent_from_the_frame_get_no_label(monkeypatch):
    visualizer = VISLocalVisualizer(name='test_vis_visualizer_labels')
    visualizer.dataset_meta = dict(classes=('person', 'dog'))
    masks = np.zeros((3, H, W), dtype=bool)
    masks[0, 2:12, 3:20] = masks[1, 2:12, 3:20] = True  # one object, 2 tracks
    drawn = []
    monkeypatch.setattr(
        visualizer, 'draw_texts', lambda texts, positions, **kw: drawn.append(
            (texts, positions)))
    visualizer._draw_instances(
        np.zeros((H, W, 3), dtype=np.uint8),
        InstanceData(
            labels=torch.tensor([0, 1, 1]),
            instances_id=torch.tensor([0, 1, 2]),
            scores=torch.tensor([0.4, 0.9, 0.8]),
            bboxes=torch.tensor([[3., 2., 20., 12.]] * 2 + [[0., 0., 0., 0.]]),
            masks=torch.from_numpy(masks)))
    (texts, positions), = drawn
    assert texts == ['person #0 0.40', 'dog #1 0.90']
    # the higher score keeps the box's corner, the other moves below it
    assert positions[1, 1] == 2.
    assert positions[0, 1] > positions[1, 1]
