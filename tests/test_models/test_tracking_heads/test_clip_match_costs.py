import pytest
import torch
from mmdet.registry import TASK_UTILS
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_overlaps
from mmengine.structures import InstanceData

import mmvis_msts  # noqa: F401


def _tracks(num, num_frames, seed):
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(num, num_frames, 2, generator=g) * 0.6 + 0.2
    sizes = torch.rand(num, num_frames, 2, generator=g) * 0.3 + 0.05
    return torch.cat([centres, sizes], -1)


def test_l2_cost_is_cdist_over_flattened_tracks():
    pred, gt = _tracks(7, 3, 0), _tracks(4, 3, 1)
    cost = TASK_UTILS.build(dict(type='ClipBBoxL2Cost',
                                 weight=5.))(InstanceData(bboxes=pred),
                                             InstanceData(bboxes=gt))
    expected = torch.cdist(pred.flatten(1), gt.flatten(1), p=2) * 5
    torch.testing.assert_close(cost, expected)
    # an all-true valid mask changes nothing
    cost_valid = TASK_UTILS.build(dict(type='ClipBBoxL2Cost'))(
        InstanceData(bboxes=pred),
        InstanceData(bboxes=gt, valid=torch.ones(4, 3, dtype=torch.bool)))
    torch.testing.assert_close(cost_valid * 5, expected)


def test_l2_cost_ignores_absent_frames():
    pred, gt = _tracks(5, 3, 2), _tracks(2, 3, 3)
    valid = torch.tensor([[True, False, True], [False, False, True]])
    gt_far = gt.clone()
    gt_far[~valid] = 100.  # absent frames must not matter
    cost = TASK_UTILS.build(dict(type='ClipBBoxL2Cost'))(
        InstanceData(bboxes=pred), InstanceData(bboxes=gt_far, valid=valid))
    for j in range(2):
        frames = valid[j]
        expected = (pred[:, frames] - gt[j, frames]).flatten(1).norm(dim=1)
        torch.testing.assert_close(cost[:, j], expected)


def test_l2_cost_normalized_over_valid_frames():
    # one GT track of 4 frames, present in frames 0 and 2; every predicted
    # box is 0.1 off in cx only, so each valid frame adds 0.01
    gt = torch.full((1, 4, 4), 0.5)
    valid = torch.tensor([[True, False, True, False]])
    pred = gt.clone()
    pred[..., 0] += 0.1
    costs = [
        TASK_UTILS.build(
            dict(type='ClipBBoxL2Cost',
                 normalize_valid_frames=norm))(InstanceData(bboxes=pred),
                                               InstanceData(
                                                   bboxes=gt, valid=valid))
        for norm in (False, True)
    ]
    # SeqFormer's sum: sqrt(2 * 0.01); normalised: sqrt(4 / 2 * 2 * 0.01),
    # the cost of the same per-frame error over all 4 frames
    torch.testing.assert_close(costs[0], torch.tensor([[0.02**0.5]]))
    torch.testing.assert_close(costs[1], torch.tensor([[0.04**0.5]]))
    all_valid = TASK_UTILS.build(
        dict(type='ClipBBoxL2Cost', normalize_valid_frames=True))(
            InstanceData(bboxes=pred),
            InstanceData(bboxes=gt, valid=torch.ones(1, 4, dtype=torch.bool)))
    torch.testing.assert_close(all_valid, costs[1])
    # absent everywhere: no cost, no division by zero
    absent = TASK_UTILS.build(
        dict(type='ClipBBoxL2Cost', normalize_valid_frames=True))(
            InstanceData(bboxes=pred),
            InstanceData(bboxes=gt, valid=torch.zeros(1, 4, dtype=torch.bool)))
    assert absent.item() == 0


def test_giou_cost_is_mean_over_frames():
    pred, gt = _tracks(6, 4, 4), _tracks(3, 4, 5)
    cost = TASK_UTILS.build(dict(type='ClipGIoUCost',
                                 weight=2.))(InstanceData(bboxes=pred),
                                             InstanceData(bboxes=gt))
    expected = torch.stack([
        bbox_overlaps(
            bbox_cxcywh_to_xyxy(pred[:, t]),
            bbox_cxcywh_to_xyxy(gt[:, t]),
            mode='giou') for t in range(4)
    ]).mean(0)
    torch.testing.assert_close(cost, -2 * expected)
    # a perfect track costs -weight
    self_cost = TASK_UTILS.build(dict(type='ClipGIoUCost'))(
        InstanceData(bboxes=gt), InstanceData(bboxes=gt))
    torch.testing.assert_close(self_cost.diagonal(), -torch.ones(3))


def test_giou_cost_with_valid_mask():
    pred, gt = _tracks(4, 3, 6), _tracks(2, 3, 7)
    valid = torch.tensor([[True, True, False], [False, True, False]])
    cost = TASK_UTILS.build(dict(type='ClipGIoUCost'))(
        InstanceData(bboxes=pred), InstanceData(bboxes=gt, valid=valid))
    for j in range(2):
        frames = valid[j].nonzero().squeeze(1)
        expected = torch.stack([
            bbox_overlaps(
                bbox_cxcywh_to_xyxy(pred[:, t]),
                bbox_cxcywh_to_xyxy(gt[j:j + 1, t]),
                mode='giou')[:, 0] for t in frames
        ]).mean(0)
        torch.testing.assert_close(cost[:, j], -expected)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match='same T'):
        TASK_UTILS.build(dict(type='ClipGIoUCost'))(
            InstanceData(bboxes=_tracks(2, 3, 0)),
            InstanceData(bboxes=_tracks(2, 4, 0)))


def test_hungarian_assigner_recovers_permutation():
    gt = _tracks(3, 4, 8)
    perm = torch.tensor([4, 0, 2])
    pred = _tracks(6, 4, 9)
    pred[perm] = gt + 0.01
    logits = torch.full((6, 5), -4.)
    labels = torch.tensor([1, 3, 0])
    logits[perm, labels] = 4.
    assigner = TASK_UTILS.build(
        dict(
            type='HungarianAssigner',
            match_costs=[
                dict(type='FocalLossCost', weight=2.),
                dict(type='ClipBBoxL2Cost', weight=5.),
                dict(type='ClipGIoUCost', weight=2.)
            ]))
    result = assigner.assign(
        InstanceData(scores=logits, bboxes=pred),
        InstanceData(labels=labels, bboxes=gt))
    assert torch.equal(result.gt_inds[perm], torch.tensor([1, 2, 3]))
    assert (result.gt_inds > 0).sum() == 3
