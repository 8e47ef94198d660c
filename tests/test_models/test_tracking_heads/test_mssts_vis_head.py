import copy
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample, TrackDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.structures import InstanceData

import mmvis_msts  # noqa: F401
from mmvis_msts.models.tracking_heads import VISHeadOutputs
from mmvis_msts.models.tracking_heads.vis_targets import (build_clip_gts,
                                                          clip_class_maps)
from mmvis_msts.models.tracking_heads.vis_transformer import any_padded

DIMS = 32
deform_attn = dict(
    embed_dims=DIMS, num_heads=4, num_levels=4, num_points=2, batch_first=True)
mha = dict(embed_dims=DIMS, num_heads=4, batch_first=True)
ffn = dict(embed_dims=DIMS, feedforward_channels=64)
# SeqFormer's losses and matching costs
SEQFORMER_HEAD = Config.fromfile(
    str(Path(__file__).parents[3] /
        'configs/_base_/models/seqformer_r50.py')).model.track_head
HEAD_CFG = dict(
    type='MSSTSVISHead',
    num_classes=3,
    num_queries=6,
    num_feature_levels=4,
    positional_encoding=dict(num_feats=DIMS // 2, normalize=True, offset=-0.5),
    encoder=dict(
        type='MSSTSEncoder',
        num_layers=1,
        layer_cfg=dict(
            self_attn_cfg=deform_attn,
            ffn_cfg=ffn,
            msts_cfg=dict(
                type='MSSTSAttention',
                embed_dims=DIMS,
                inner_dims=16,
                num_heads=2,
                feedforward_channels=32))),
    decoder=dict(
        type='TemporalAttnDecoder',
        num_layers=2,
        layer_cfg=dict(
            self_attn_cfg=mha,
            cross_attn_cfg=deform_attn,
            ffn_cfg=ffn,
            temporal_attn_cfg=mha)),
    mask_head=dict(
        type='DynamicConvMaskHead',
        in_channels=DIMS,
        branch_channels=(16, 8),
        rel_coord_normalize=True),
    supervise_absent_boxes=False,
    test_cfg=dict(max_per_video=4, mask_thr=0.5, drop_empty=False),
    **{
        key: SEQFORMER_HEAD[key]
        for key in ('loss_cls', 'loss_bbox', 'loss_iou', 'loss_mask',
                    'loss_dice', 'train_cfg')
    })

# (instance id, label, box x1 y1 x2 y2, frames where present)
INSTANCES = [(7, 1, (4, 8, 30, 40), (0, 1)), (3, 2, (36, 10, 60, 50), (0, 1))]


def build_head(**kwargs):
    torch.manual_seed(0)
    cfg = copy.deepcopy(HEAD_CFG)
    cfg.update(kwargs)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def make_clip(num_frames=3,
              img_hw=(60, 70),
              pad_hw=(64, 96),
              instances=INSTANCES,
              ori_hw=None):
    """One clip; frame 2 has no instance. Masks are filled boxes."""
    frames = []
    for t in range(num_frames):
        present = [inst for inst in instances if t in inst[3]]
        masks = np.zeros((len(present), *pad_hw), dtype=np.uint8)
        for i, (_, _, (x1, y1, x2, y2), _) in enumerate(present):
            masks[i, y1:y2, x1:x2] = 1
        frame = DetDataSample(
            metainfo=dict(
                img_shape=img_hw,
                ori_shape=ori_hw or img_hw,
                batch_input_shape=pad_hw,
                pad_shape=pad_hw,
                frame_id=t,
                img_id=t,
                video_id=0))
        frame.gt_instances = InstanceData(
            labels=torch.tensor([p[1] for p in present], dtype=torch.long),
            bboxes=torch.tensor([p[2] for p in present],
                                dtype=torch.float32).view(-1, 4),
            masks=BitmapMasks(masks, *pad_hw),
            instances_ids=torch.tensor([p[0] for p in present],
                                       dtype=torch.long))
        frames.append(frame)
    sample = TrackDataSample()
    sample.video_data_samples = frames
    return sample


def make_feats(batch_frames, pad_hw=(64, 96), seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randn(
            batch_frames,
            DIMS,
            -(-pad_hw[0] // s),
            -(-pad_hw[1] // s),
            generator=g) for s in (8, 16, 32, 64)
    ]


def test_forward_shapes():
    head = build_head()
    samples = [make_clip(), make_clip()]
    outs = head(make_feats(6), samples)
    assert isinstance(outs, VISHeadOutputs)
    assert outs.num_layers == 2
    assert outs.cls_scores.shape == (2, 2, 6, 3)
    assert outs.bbox_preds.shape == (2, 2, 3, 6, 4)
    assert ((outs.bbox_preds > 0) & (outs.bbox_preds < 1)).all()
    # 3 dynamic 1x1 convs 10->8->8->1: 80 + 64 + 8 weights, 8 + 8 + 1 biases
    assert outs.mask_params.shape == (2, 2, 6, 169)
    assert outs.mask_centres.shape == (2, 2, 3, 6, 2)
    # 64x96 input at stride 8; stride 4 after the x2 upsampling
    assert outs.mask_feats.shape == (2, 3, 8, 8, 12)
    assert (outs.mask_feat_stride, outs.mask_out_stride) == (8, 4)
    assert outs.mask_out_size == (16, 24)
    assert outs.img_sizes[0, 0].tolist() == [70., 60.]
    assert [m.shape[-2:] for m in outs.mlvl_memory] == \
        [(8, 12), (4, 6), (2, 3), (1, 2)]
    # layer 0 masks use the initial references, shared by the frames
    centres = outs.mask_centres[0]
    torch.testing.assert_close(centres[:, 0], centres[:, 2])
    # layer 1 masks use the boxes of layer 0
    torch.testing.assert_close(outs.mask_centres[1], outs.bbox_preds[0,
                                                                     ..., :2])
    assert outs.bbox_preds.requires_grad


@pytest.mark.parametrize('img_hw', [(60, 70), (64, 96)])
def test_forward_is_one_graph_without_host_reads(img_hw):
    """The forward pass reads no tensor back on the host (level sizes travel
    as ints, whether a frame is padded comes from the metas), so dynamo
    captures it whole: ``fullgraph=True`` fails on any ``tolist()``,
    ``item()`` or ``bool(tensor)``, each a device sync on a GPU. Padded
    frames and frames that fill the batch input (no padding mask)."""
    head = build_head().eval()
    samples = [make_clip(img_hw=img_hw), make_clip(img_hw=img_hw)]
    feats = make_feats(6)
    torch._dynamo.reset()
    with torch.no_grad():
        want = head(feats, samples)
        got = torch.compile(
            head, backend='eager', fullgraph=True)(feats, samples)
    for name in ('cls_scores', 'bbox_preds', 'mask_params', 'mask_feats'):
        torch.testing.assert_close(getattr(got, name), getattr(want, name))


def test_padding_from_the_metas():
    padded = make_clip(img_hw=(60, 70)).video_data_samples
    full = make_clip(img_hw=(64, 96)).video_data_samples
    assert any_padded([f.metainfo for f in padded])
    assert not any_padded([f.metainfo for f in full])
    assert any_padded([f.metainfo for f in full + padded[:1]])


def test_forward_checks_inputs():
    head = build_head()
    with pytest.raises(ValueError, match='hold 5 frames'):
        head(make_feats(5), [make_clip(), make_clip()])
    with pytest.raises(ValueError, match='same number of frames'):
        head(make_feats(5), [make_clip(2), make_clip(3)])
    with pytest.raises(ValueError, match='4 feature levels'):
        head(make_feats(3)[:3], [make_clip()])


@pytest.mark.parametrize('supervise_absent', [False, True])
def test_build_clip_gts(supervise_absent):
    gt, = build_clip_gts([make_clip()],
                         mask_out_stride=4,
                         mask_size=(16, 24),
                         supervise_absent_boxes=supervise_absent)
    # instances sorted by id: 3 then 7
    assert gt.labels.tolist() == [2, 1]
    assert gt.instances_ids.tolist() == [[3, 3, -1], [7, 7, -1]]
    assert gt.valid.tolist() == [[True, True, False]] * 2
    assert gt.box_valid.all() == supervise_absent
    # box (4, 8, 30, 40) in a 70x60 image -> normalised cxcywh
    torch.testing.assert_close(
        gt.bboxes[1, 0], torch.tensor([17 / 70, 24 / 60, 26 / 70, 32 / 60]))
    assert (gt.bboxes[:, 2] == 0).all()
    # stride-4 masks sampled at offset 2
    assert gt.masks.shape == (2, 3, 16, 24)
    assert gt.masks[1, 0].sum() == len(range(10, 40, 4)) * len(range(6, 30, 4))
    assert gt.masks[:, 2].sum() == 0


def test_loss_terms():
    head = build_head()
    samples = [make_clip(), make_clip()]
    losses = head.loss(make_feats(6), samples)
    names = ['loss_cls', 'loss_bbox', 'loss_giou', 'loss_mask', 'loss_dice']
    assert sorted(losses) == sorted(names + [f'd0.{n}' for n in names])
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    missing = [n for n, p in head.named_parameters() if p.grad is None]
    assert not missing


def test_bf16_autocast_reaches_the_head_unless_turned_off():
    samples, feats = [make_clip()], make_feats(3)
    plain = build_head()(feats, samples)
    assert plain.float() is plain  # float32 already: nothing copied
    with torch.autocast('cpu', dtype=torch.bfloat16):
        mixed = build_head()(feats, samples)
        kept = build_head(autocast=False)(feats, samples)
    assert mixed.cls_scores.dtype == torch.bfloat16
    assert kept.cls_scores.dtype == torch.float32
    # autocast=False is the float32 head, op for op
    torch.testing.assert_close(kept.cls_scores, plain.cls_scores)
    torch.testing.assert_close(kept.mask_feats, plain.mask_feats)
    # bfloat16 keeps 8 bits of mantissa: about 2 significant digits
    as_float = mixed.float()
    assert all(m.dtype == torch.float32 for m in as_float.mlvl_memory)
    torch.testing.assert_close(
        as_float.bbox_preds, plain.bbox_preds, rtol=0, atol=0.05)


def test_losses_are_float32_under_bf16_autocast():
    samples, feats = [make_clip(), make_clip()], make_feats(6)
    head = build_head()
    reference = head.loss(feats, samples)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = head.loss(feats, samples)
    assert all(v.dtype == torch.float32 for v in losses.values())
    # the same matching and about the same values as in float32
    for name, value in reference.items():
        torch.testing.assert_close(
            losses[name], value, rtol=0.1, atol=0.02, msg=name)


def test_loss_without_gt_is_finite():
    head = build_head()
    losses = head.loss(make_feats(3), [make_clip(instances=[])])
    assert all(torch.isfinite(v) for v in losses.values())
    for key in ('loss_bbox', 'loss_giou', 'loss_mask', 'loss_dice'):
        assert losses[key] == 0
    assert losses['loss_cls'] > 0
    sum(losses.values()).backward()


@pytest.mark.parametrize('supervise_absent', [False, True])
def test_absent_frame_boxes(supervise_absent):
    """Frame 2 has no instance: its boxes matter only when supervised."""
    head = build_head(supervise_absent_boxes=supervise_absent)
    samples = [make_clip()]
    with torch.no_grad():
        outs = head(make_feats(3), samples)
        losses = head.loss_by_feat(outs, head.get_targets(outs, samples))
        moved = dataclasses.replace(outs, bbox_preds=outs.bbox_preds.clone())
        moved.bbox_preds[:, :, 2] = torch.tensor([0.9, 0.9, 0.1, 0.1])
        moved_losses = head.loss_by_feat(moved,
                                         head.get_targets(moved, samples))
    # masked: the costs ignore frame 2 too, so matching and all other
    # losses stay the same
    keys = ('loss_bbox', 'loss_giou') if supervise_absent else tuple(losses)
    for key in keys:
        same = torch.allclose(losses[key], moved_losses[key])
        assert same != supervise_absent, key


def test_foreground_maps():
    head = build_head()
    samples = [make_clip(), make_clip(instances=[])]
    outs = head(make_feats(6), samples)
    fg = head.foreground_maps(outs, head.get_targets(outs, samples))
    assert fg.pred.shape == fg.gt.shape == (6, 1, 16, 24)
    # GT union by hand: frames 0 and 1 hold both (disjoint) boxes, frame 2
    # none. Sampled at stride 4 from offset 2, box (4, 8, 30, 40) keeps
    # columns 6..26 (6) and rows 10..38 (8), box (36, 10, 60, 50) columns
    # 38..58 (6) and rows 10..46 (10)
    assert fg.gt[0].sum() == 6 * 8 + 6 * 10
    assert torch.equal(fg.gt[0], fg.gt[1])
    assert fg.gt[2:].sum() == 0
    assert fg.pred[3:].sum() == 0  # second clip: nothing matched
    # binary, as the GT: thresholded masks of the matched queries
    assert ((fg.pred == 0) | (fg.pred == 1)).all()
    assert fg.pred.requires_grad


def test_foreground_maps_show_confident_unmatched_queries():
    head = build_head()
    samples = [make_clip(), make_clip(instances=[])]
    outs = head(make_feats(6), samples)
    targets = head.get_targets(outs, samples)
    fg = head.foreground_maps(outs, targets, num_unmatched=2)
    # the clip without GT: the 2 best-scoring queries' masks at probability
    # > 0.5, each weighted by its score (max over classes)
    scores = outs.cls_scores[-1, 1].sigmoid().amax(-1)
    best = scores.topk(2).indices
    masks = head.mask_logits(outs, -1, torch.ones_like(best), best) > 0
    expected = (masks * scores[best, None, None, None]).amax(0)
    torch.testing.assert_close(fg.pred[3:, 0], expected.detach())
    # straight-through: the gradient reaches the mask logits and the scores
    fg.pred.sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for n, p in head.named_parameters() if 'cls_branches' in n)
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for n, p in head.named_parameters() if 'controller' in n)


def test_predict_per_frame_results():
    head = build_head()
    head.eval()
    # 4 frames at test time (the loss tests use 3); original size differs
    sample = make_clip(num_frames=4, ori_hw=(120, 140))
    with torch.no_grad():
        results, = head.predict(make_feats(4), [sample])
    assert len(results) == 4
    for frame_result in results:
        assert frame_result.masks.shape == (4, 120, 140)
        assert frame_result.masks.dtype == torch.bool
        assert frame_result.bboxes.shape == (4, 4)
        assert frame_result.instances_id.tolist() == [0, 1, 2, 3]
        assert ((frame_result.labels >= 0) & (frame_result.labels < 3)).all()
        torch.testing.assert_close(frame_result.scores, results[0].scores)
    assert (results[0].scores[:-1] >= results[0].scores[1:]).all()
    with torch.no_grad():
        small, = head.predict(make_feats(4), [sample], rescale=False)
    assert small[0].masks.shape == (4, 60, 70)


def test_predict_under_bf16_autocast_gives_float32_results():
    head = build_head()
    head.eval()
    sample = make_clip(num_frames=4, ori_hw=(120, 140))
    with torch.no_grad():
        reference, = head.predict(make_feats(4), [copy.deepcopy(sample)])
        with torch.autocast('cpu', dtype=torch.bfloat16):
            results, = head.predict(make_feats(4), [sample])
    for frame_result, ref in zip(results, reference):
        assert frame_result.scores.dtype == torch.float32
        assert frame_result.bboxes.dtype == torch.float32
        torch.testing.assert_close(
            frame_result.scores, ref.scores, rtol=0, atol=0.02)


def test_predict_by_feat_on_known_logits(monkeypatch):
    """Post-processing of hand-made scores and mask logits.

    Three queries, two classes: the top-4 (query, class) pairs by hand are
    (q2, c0) 0.9, (q0, c1) 0.8, (q1, c1) 0.7, (q0, c0) 0.6. Query q0's mask
    logit is +4 on a 2x3 block of the 16x24 stride-4 grid, q1's mask is
    empty (-4 everywhere, dropped), q2's is +4 on one cell. The expected
    masks come from torch's bilinear upsampling (the reference) of these
    logits to the 64x96 input, thresholded at probability 0.5 (logit 0).
    """
    head = build_head(
        num_classes=2,
        test_cfg=dict(max_per_video=4, mask_thr=0.5, drop_empty=True))
    head.eval()
    probs = torch.tensor([[0.6, 0.8], [0.1, 0.7], [0.9, 0.2]])
    logits = torch.full((3, 2, 16, 24), -4.)
    logits[0, :, 3:5, 6:9] = 4.
    logits[2, :, 10, 20] = 4.
    outs = VISHeadOutputs(
        cls_scores=torch.logit(probs)[None, None],
        bbox_preds=torch.full((1, 1, 2, 3, 4), 0.5),
        instance_queries=torch.zeros(1, 3, 8),
        mask_params=torch.zeros(1, 1, 3, 1),
        mask_centres=torch.zeros(1, 1, 2, 3, 2),
        mask_feats=torch.zeros(1, 2, 8, 8, 12),
        mask_feat_stride=8,
        mask_out_stride=4,
        img_sizes=torch.tensor([[[96., 64.]] * 2]),
        mlvl_memory=[])

    def known_logits(head_outs, layer_id, clip_inds, query_inds):
        assert layer_id == -1 and (clip_inds == 0).all()
        return logits[query_inds]

    monkeypatch.setattr(head, 'mask_logits', known_logits)
    sample = make_clip(num_frames=2, img_hw=(64, 96))
    results = head.predict_by_feat(outs, [sample])[0]
    expected = F.interpolate(
        logits, size=(64, 96), mode='bilinear', align_corners=False) > 0
    assert len(results) == 2
    for frame in results:
        # (q1, c1) has an empty mask and is dropped
        torch.testing.assert_close(frame.scores, torch.tensor([0.9, 0.8, 0.6]))
        assert frame.labels.tolist() == [0, 1, 0]
        assert frame.instances_id.tolist() == [0, 1, 2]
        for i, query in enumerate([2, 0, 0]):
            assert torch.equal(frame.masks[i], expected[query, 0])
        # the box of q0's mask, from the reference mask
        ys, xs = torch.nonzero(expected[0, 0], as_tuple=True)
        assert frame.bboxes[1].tolist() == [
            xs.min().item(),
            ys.min().item(),
            xs.max().item() + 1,
            ys.max().item() + 1
        ]


def test_init_weights():
    from mmvis_msts.ops import MSDeformAttn
    head = build_head()
    attns = [m for m in head.modules() if isinstance(m, MSDeformAttn)]
    assert len(attns) == 3  # 1 encoder + 2 decoder layers
    for attn in attns:
        assert not attn.sampling_offsets.weight.any()
        assert not attn.attention_weights.weight.any()
    for layer in head.encoder.layers:
        assert not layer.msts_attn.out_proj.weight.any()
    # xavier on the other transformer matrices
    assert head.decoder.layers[0].ffn.layers[0][0].weight.std() > 0
    prior = -torch.log(torch.tensor(99.))
    for cls_branch in head.cls_branches:
        torch.testing.assert_close(cls_branch.bias, prior.expand(3))
    for i, reg_branch in enumerate(head.reg_branches):
        last = reg_branch.layers[-1]
        assert not last.weight.any() and not last.bias[:2].any()
        assert (last.bias[2:] == (-2. if i == 0 else 0.)).all()
    assert head.level_embed.std() > 0
    assert not head.reference_points_fc.bias.any()


def test_window_candidates_of_the_top_pairs():
    """The top-k pairs with their queries' last-layer instance queries as
    embeddings (the class branch maps them to the pairs' scores) and the
    head's own mask logits of those queries."""
    head = build_head(test_cfg=dict(max_per_video=4))
    head.eval()
    sample = make_clip(num_frames=3)
    with torch.no_grad():
        outs = head(make_feats(3), [sample])
        cands = head.window_candidates(outs)
    probs = outs.cls_scores[-1, 0].sigmoid()  # (Q, K)
    top = probs.flatten().topk(4).values
    torch.testing.assert_close(cands.scores, top)
    torch.testing.assert_close(probs[cands.query_inds, cands.labels],
                               cands.scores)
    assert cands.embeds.shape == (4, head.embed_dims)
    with torch.no_grad():
        cls_of_embeds = head.cls_branches[-1](cands.embeds).sigmoid()
    torch.testing.assert_close(cls_of_embeds[torch.arange(4), cands.labels],
                               cands.scores)
    torch.testing.assert_close(
        cands.mask_logits,
        head.mask_logits(outs, -1, torch.zeros_like(cands.query_inds),
                         cands.query_inds))
    assert cands.mask_logits.shape == (4, 3, 16, 24)


@pytest.mark.parametrize('mask_thr', [0.3, 0.5, 0.7])
def test_frame_masks_threshold_in_logit_space(mask_thr):
    """Per-frame logit thresholding against the probabilities of the
    upsampled logits (the former post-processing), rescaled to another
    size: equal except where sigmoid rounds onto the threshold."""
    head = build_head(test_cfg=dict(mask_thr=mask_thr))
    torch.manual_seed(0)
    logits = torch.randn(5, 3, 16, 24) * 4
    sample = make_clip(num_frames=3, ori_hw=(120, 140))
    metas = [sample[i].metainfo for i in range(3)]
    masks = head.frame_masks(logits, metas, rescale=True)
    h, w = metas[0]['img_shape'][:2]
    probs = F.interpolate(
        F.interpolate(
            logits,
            size=metas[0]['batch_input_shape'],
            mode='bilinear',
            align_corners=False)[..., :h, :w],
        size=(120, 140),
        mode='bilinear',
        align_corners=False).sigmoid()
    expected = probs > mask_thr
    ties = probs == mask_thr
    assert len(masks) == 3
    for t, frame in enumerate(masks):
        assert frame.shape == (5, 120, 140) and frame.dtype == torch.bool
        assert torch.equal(frame[~ties[:, t]], expected[:, t][~ties[:, t]])
    with pytest.raises(ValueError, match='mask_thr'):
        build_head(test_cfg=dict(mask_thr=1.0)).frame_masks(
            logits, metas, rescale=True)


LOSS_SEM = dict(
    type='mmdet.FocalLoss',
    use_sigmoid=True,
    gamma=2.0,
    alpha=0.25,
    loss_weight=2.0)


def test_clip_class_maps_by_hand():
    masks = torch.zeros(3, 2, 2, 3, dtype=torch.bool)
    masks[0, 0, 0, 0] = masks[0, 1, 1, 1] = True  # class 2
    masks[1, 0, 1, 2] = True  # class 0
    masks[2, 0, 0, 1] = True  # class 2 again, same frame as instance 0
    gt = InstanceData(labels=torch.tensor([2, 0, 2]), masks=masks)
    maps = clip_class_maps(gt, num_classes=3)
    want = torch.zeros(2, 3, 2, 3)
    want[0, 2, 0, 0] = want[1, 2, 1, 1] = want[0, 2, 0, 1] = 1
    want[0, 0, 1, 2] = 1
    torch.testing.assert_close(maps, want)
    empty = InstanceData(
        labels=torch.zeros(0, dtype=torch.long),
        masks=torch.zeros(0, 2, 2, 3, dtype=torch.bool))
    torch.testing.assert_close(
        clip_class_maps(empty, num_classes=3), torch.zeros(2, 3, 2, 3))


def reference_focal(logits, targets, gamma=2.0, alpha=0.25):
    """Sigmoid focal loss of Lin et al. (2017), element-wise."""
    p = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction='none')
    p_t = p * targets + (1 - p) * (1 - targets)
    return ce * (1 - p_t)**gamma * (
        alpha * targets + (1 - alpha) * (1 - targets))


def test_semantic_loss_against_boxes_by_hand():
    """``loss_sem`` is the focal loss of the finest encoder map's class
    logits against the GT boxes' classes, built here from the box corners:
    a stride-4 GT pixel (i, j) samples input pixel (4i + 2, 4j + 2), and a
    stride-8 target is the mean of its 2x2 stride-4 pixels."""
    head = build_head(loss_sem=LOSS_SEM).train()
    samples = [make_clip(), make_clip()]
    outs = head(make_feats(6), samples)
    assert outs.sem_logits.shape == (6, 3, 8, 12)
    losses = head.loss_by_feat(outs, head.get_targets(outs, samples))

    want = torch.zeros(3, 3, 8, 12)  # (T, K, H_8, W_8) of one clip
    centres = torch.arange(16) * 4 + 2, torch.arange(24) * 4 + 2
    for _, label, (x1, y1, x2, y2), frames in INSTANCES:
        inside = (((centres[0] >= y1) & (centres[0] < y2))[:, None]
                  & ((centres[1] >= x1) & (centres[1] < x2))[None])
        for t in frames:
            want[t, label] += F.avg_pool2d(inside[None].float(), 2)[0]
    want = torch.cat([want, want])  # both clips
    logits = outs.sem_logits.detach()
    expected = 2.0 * reference_focal(logits, want).sum() / (6 * 8 * 12)
    torch.testing.assert_close(losses['loss_sem'].detach(), expected)
    losses['loss_sem'].backward()
    assert head.sem_branch.weight.grad.abs().sum() > 0


def test_semantic_branch_trains_only():
    head = build_head(loss_sem=LOSS_SEM).eval()
    with torch.no_grad():
        assert head(make_feats(3), [make_clip()]).sem_logits is None
    plain = build_head()
    assert plain.sem_branch is None
    assert 'loss_sem' not in plain.loss(make_feats(3), [make_clip()])
