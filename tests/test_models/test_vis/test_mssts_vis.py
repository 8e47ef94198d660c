"""MSSTSVIS on CPU with the tiny synthetic config."""
import copy
import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from mmdet.registry import METRICS, MODELS, OPTIM_WRAPPER_CONSTRUCTORS
from mmdet.structures import DetDataSample, TrackDataSample
from mmdet.structures.mask import BitmapMasks
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmengine.structures import InstanceData

import mmvis_msts  # noqa: F401

REPO = Path(__file__).resolve().parents[3]
TINY_CONFIG = REPO / 'configs/msts_vis/msts-vis_r18-tiny_1xb4-2k_synthetic.py'
NUM_LOSSES_PER_LAYER = 5
METRIC_KEYS = ('youtube_vis/segm_mAP', 'youtube_vis/segm_mAP_50',
               'youtube_vis/segm_mAP_75', 'youtube_vis/segm_AR@1',
               'youtube_vis/segm_AR@10')


@pytest.fixture(scope='module')
def cfg():
    register_all_modules(init_default_scope=True)
    return Config.fromfile(str(TINY_CONFIG))


def build_model(cfg, **overrides):
    torch.manual_seed(0)
    model_cfg = copy.deepcopy(cfg.model)
    for key, value in overrides.items():
        model_cfg[key] = value  # replace, not merge
    model = MODELS.build(model_cfg)
    model.init_weights()
    return model


def draw_clip(num_frames=2, size=(64, 64), video_id=0, absent=()):
    """A square moving right and a disc moving down on a dark background.

    Returns:
        dict: One packed sample (``inputs`` uint8 (T, 3, H, W),
        ``data_samples`` TrackDataSample with GT and YouTube-VIS metainfo).
    """
    h, w = size
    ys, xs = np.mgrid[:h, :w]
    frames, imgs = [], []
    for t in range(num_frames):
        square = np.zeros((h, w), np.uint8)
        left = w // 10 + 2 * t
        square[h // 6:h // 2, left:left + w // 3] = 1
        disc = ((ys - h // 3 - 2 * t)**2 + (xs - 0.7 * w)**2
                < (h / 6)**2).astype(np.uint8)
        shapes = [(1, square, 0), (2, disc, 3)]
        shapes = [s for s in shapes if (t, s[0]) not in absent]
        img = np.full((3, h, w), 30, np.uint8)
        colours = np.array([(200, 40, 40), (40, 200, 40), (40, 40, 200),
                            (220, 220, 40)], np.uint8)
        for _, mask, label in shapes:
            img[:, mask > 0] = colours[label][:, None]
        masks = np.stack([m for _, m, _ in shapes]) if shapes else \
            np.zeros((0, h, w), np.uint8)
        boxes = [[
            xs[m > 0].min(), ys[m > 0].min(), xs[m > 0].max() + 1,
            ys[m > 0].max() + 1
        ] for _, m, _ in shapes]
        instances = [
            dict(
                bbox=box,
                bbox_label=label,
                instance_id=inst_id + 100 * video_id,
                ignore_flag=0,
                mask=mask_util.encode(np.asfortranarray(m)))
            for (inst_id, m, label), box in zip(shapes, boxes)
        ]
        frame = DetDataSample(
            metainfo=dict(
                img_id=video_id * 100 + t,
                video_id=video_id,
                frame_id=t,
                img_shape=size,
                ori_shape=size,
                ori_video_length=num_frames,
                video_length=num_frames,
                instances=instances))
        frame.gt_instances = InstanceData(
            labels=torch.tensor([s[2] for s in shapes], dtype=torch.long),
            bboxes=torch.tensor(boxes, dtype=torch.float32).view(-1, 4),
            masks=BitmapMasks(masks, h, w),
            instances_ids=torch.tensor([s[0] for s in shapes],
                                       dtype=torch.long))
        frames.append(frame)
        imgs.append(torch.from_numpy(img))
    sample = TrackDataSample()
    sample.video_data_samples = frames
    return dict(inputs=torch.stack(imgs), data_samples=sample)


def batch(model, clips, training=True):
    data = dict(
        inputs=[c['inputs'] for c in clips],
        data_samples=[c['data_samples'] for c in clips])
    return model.data_preprocessor(data, training)


def loss_names(num_layers):
    names = ['loss_cls', 'loss_bbox', 'loss_giou', 'loss_mask', 'loss_dice']
    return set(names) | {
        f'd{i}.{n}'
        for i in range(num_layers - 1)
        for n in names
    }


def no_warmup(cfg, **kwargs):
    """The config's ``loss_adv`` with the generator term on at once."""
    return dict(cfg.model.loss_adv,
                **dict(dict(warmup_iters=0, ramp_iters=0), **kwargs))


def test_loss_terms(cfg):
    model = build_model(cfg, loss_adv=no_warmup(cfg))
    # 5 losses per decoder layer of the config (3 layers), plus loss_adv
    num_layers = cfg.model.track_head.decoder.num_layers
    losses = model.loss(**batch(model, [draw_clip(), draw_clip(video_id=1)]))
    assert len(losses) == NUM_LOSSES_PER_LAYER * num_layers + 1
    assert set(losses) == loss_names(num_layers) | {'loss_adv'}
    assert all(torch.isfinite(v) for v in losses.values())
    # in the config's D warm-up (iteration 0 outside a runner): no loss_adv
    warming = build_model(cfg)
    assert set(warming.loss(**batch(warming, [draw_clip()]))) == \
        loss_names(num_layers)

    plain = build_model(cfg, discriminator=None)
    losses = plain.loss(**batch(plain, [draw_clip()]))
    assert set(losses) == loss_names(num_layers)
    assert all(torch.isfinite(v) for v in losses.values())


def test_switches_change_the_module_graph(cfg):
    from mmvis_msts.models.discriminators import FgBgDiscriminator
    from mmvis_msts.models.layers import (MSSTSEncoderLayer, SeqFormerDecoder,
                                          SeqFormerEncoder,
                                          SeqFormerEncoderLayer,
                                          TemporalAttnDecoder)
    model = build_model(cfg)
    head = model.track_head
    assert type(head.encoder).__name__ == 'MSSTSEncoder'
    assert all(
        type(layer) is MSSTSEncoderLayer for layer in head.encoder.layers)
    assert type(head.decoder) is TemporalAttnDecoder
    assert all(
        hasattr(layer, 'temporal_attn') for layer in head.decoder.layers)
    assert isinstance(model.discriminator, FgBgDiscriminator)

    # all three off: SeqFormer
    track_head = copy.deepcopy(cfg.model.track_head)
    track_head.encoder.type = 'SeqFormerEncoder'
    track_head.encoder.layer_cfg.pop('msts_cfg')
    track_head.decoder.type = 'SeqFormerDecoder'
    track_head.decoder.layer_cfg.pop('temporal_attn_cfg')
    seqformer = build_model(cfg, track_head=track_head, discriminator=None)
    head = seqformer.track_head
    assert type(head.encoder) is SeqFormerEncoder
    assert all(
        type(layer) is SeqFormerEncoderLayer for layer in head.encoder.layers)
    assert type(head.decoder) is SeqFormerDecoder
    assert not any(
        hasattr(layer, 'temporal_attn') for layer in head.decoder.layers)
    assert seqformer.discriminator is None
    assert not seqformer.with_discriminator
    names = [n for n, _ in seqformer.named_parameters()]
    assert not any('msts_attn' in n or 'temporal_attn' in n for n in names)
    assert set(names) < {n for n, _ in model.named_parameters()}


def _randomise_zero_weights(model):
    """Zero-initialised weights (last box layers, MS-STS output, the last BN
    of each residual block) block the gradient to the layers before them at
    step 0; give them values."""
    g = torch.Generator().manual_seed(1)
    for name, p in model.named_parameters():
        if name.endswith('weight') and not p.any():
            p.data.copy_(torch.randn(p.shape, generator=g) * 0.02)


def _record(optim_wrapper, key, model, log):
    """Wrap ``step`` to log the gradients it used and the weights it
    changed (the generator gradient is added inside it)."""
    step = optim_wrapper.step

    def logged_step(**kwargs):
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        step(**kwargs)
        grads = {
            n: p.grad.detach().clone()
            for n, p in model.named_parameters()
            if p.grad is not None and p.grad.abs().sum() > 0
        }
        changed = {
            n
            for n, p in model.named_parameters()
            if not torch.equal(before[n], p)
        }
        log.append((key, grads, changed))

    optim_wrapper.step = logged_step


def adversarial_wrapper(cfg, model, clip_max_norm=None):
    """The config's OptimWrapperDict, the model's clip optionally set."""
    wrapper_cfg = {
        k: copy.deepcopy(v)
        for k, v in cfg.optim_wrapper.items() if k != 'constructor'
    }
    if clip_max_norm is not None:
        wrapper_cfg['model']['clip_grad'] = dict(max_norm=clip_max_norm)
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(
        dict(
            type=cfg.optim_wrapper.constructor, optim_wrapper_cfg=wrapper_cfg))
    return constructor(model)


def one_clip_batch():
    clip = draw_clip()
    return dict(inputs=[clip['inputs']], data_samples=[clip['data_samples']])


def test_adversarial_train_step(cfg):
    model = build_model(cfg, loss_adv=no_warmup(cfg))
    _randomise_zero_weights(model)
    optim_wrapper = adversarial_wrapper(cfg, model)
    assert isinstance(optim_wrapper, OptimWrapperDict)
    disc = {
        n
        for n, _ in model.named_parameters() if n.startswith('discriminator.')
    }
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    vis = trainable - disc
    assert disc and vis
    groups = {
        key: {id(p)
              for g in w.optimizer.param_groups
              for p in g['params']}
        for key, w in optim_wrapper.items()
    }
    params = dict(model.named_parameters())
    assert groups['discriminator'] == {id(params[n]) for n in disc}
    assert groups['model'] == {id(params[n]) for n in vis}

    log = []
    for key, wrapper in optim_wrapper.items():
        _record(wrapper, key, model, log)
    log_vars = model.train_step(one_clip_batch(), optim_wrapper)

    assert {
        'loss', 'loss_adv', 'loss_disc', 'loss_disc_real', 'loss_disc_fake',
        'disc_acc_real', 'disc_acc_fake', 'disc_margin', 'adv_weight',
        'adv_grad_norm_enc', 'vis_grad_norm_enc'
    } <= set(log_vars)
    for key in ('disc_acc_real', 'disc_acc_fake'):
        assert 0 <= log_vars[key] <= 1
    # the generator term reaches the encoder (through the fake map)
    assert log_vars['adv_grad_norm_enc'] > 0
    assert log_vars['vis_grad_norm_enc'] > 0
    assert [entry[0] for entry in log] == ['discriminator', 'model']
    (_, d_grads, d_changed), (_, m_grads, m_changed) = log
    # discriminator step: only (and every) discriminator weight; with the
    # hinge loss the logits' bias gets -1 per real and +1 per fake patch
    # while all patches are inside the margin (as at init): they cancel
    assert set(d_grads) == disc - {'discriminator.logits.bias'}
    assert d_changed == disc
    # model step: every VIS weight gets a gradient, none of D's moves
    assert set(m_grads) == vis
    assert not m_changed & disc
    assert all(p.requires_grad for n, p in params.items() if n in disc)
    assert model.discriminator.training


def _model_step_grads(cfg, clip_max_norm=None, **loss_adv):
    """The gradients the model optimiser used in one adversarial step."""
    model = build_model(cfg, loss_adv=no_warmup(cfg, **loss_adv))
    _randomise_zero_weights(model)
    optim_wrapper = adversarial_wrapper(cfg, model, clip_max_norm)
    log = []
    _record(optim_wrapper['model'], 'model', model, log)
    torch.manual_seed(1)  # the same dropout masks in every call
    model.train_step(one_clip_batch(), optim_wrapper)
    return log[0][1]


def _norm(grads):
    return torch.stack([g.norm() for g in grads.values()]).norm().item() \
        if grads else 0.


def test_adversarial_gradient_clip_apart_or_together(cfg):
    # a model clip of 1e-12 leaves the VIS gradient at norm 1e-12. With
    # clip_apart, what the optimiser sees on top of it is the generator
    # term's gradient, which the clip did not touch; by default (one
    # backward pass) the clip holds the sum, as in the warm-up (VIS only)
    assert _norm(_model_step_grads(cfg, 1e-12, warmup_iters=1)) < 1e-10
    assert _norm(_model_step_grads(cfg, 1e-12, clip_apart=True)) > 1e-6
    assert _norm(_model_step_grads(cfg, 1e-12)) < 1e-10


def test_one_backward_pass_gives_the_gradients_of_two(cfg):
    # with a clip that never acts, the VIS and generator gradients of one
    # backward pass are those of the two passes of clip_apart (the
    # reference), and both differ from the VIS gradient alone
    together = _model_step_grads(cfg, 1e12)
    apart = _model_step_grads(cfg, 1e12, clip_apart=True)
    vis_only = _model_step_grads(cfg, 1e12, warmup_iters=1)
    assert set(together) == set(apart)
    flat = {
        key: torch.cat([grads[n].flatten() for n in sorted(apart)])
        for key, grads in (('together', together), ('apart', apart))
    }
    # float sums in another order: equal to 1e-4 of the gradient's norm
    assert (flat['together'] - flat['apart']).norm() <= \
        1e-4 * flat['apart'].norm()
    assert max((together[n] - vis_only[n]).abs().max().item()
               for n in together) > 1e-6


def test_discriminator_learns_in_the_model(cfg, fresh_message_hub):
    # (b): 60 steps on one fixed clip (narrow backbone, 32 x 32 frames, BCE,
    # the generator term ramping up over the last 20 steps): D's summed loss
    # goes from 2 ln 2 = 1.39 (chance) below 1.2, as a mean over 5 steps
    # with the generator term on. Not the last 5 steps: on one clip the
    # generator can answer D within a few steps, and the two then take
    # turns (seen with 2 threads: 0.45 at step 46, 1.7 at step 52).
    backbone, neck = narrow_input_side(cfg, width=16)
    model = build_model(
        cfg,
        backbone=backbone,
        neck=neck,
        loss_adv=dict(
            cfg.model.loss_adv, gan_type='bce', warmup_iters=40,
            ramp_iters=20))
    optim_wrapper = adversarial_wrapper(cfg, model)
    clip = draw_clip(num_frames=2, size=(32, 32))
    disc_losses, norm_iters = [], []
    for it in range(60):
        fresh_message_hub.update_info('iter', it)
        data = dict(
            inputs=[clip['inputs']],
            data_samples=[copy.deepcopy(clip['data_samples'])])
        log_vars = model.train_step(data, optim_wrapper)
        disc_losses.append(log_vars['loss_disc'].item())
        if 'adv_grad_norm_enc' in log_vars:
            norm_iters.append(it)
    # the generator term is on from iteration 40; norms every 10 of them
    assert norm_iters == [40, 50]
    assert abs(disc_losses[0] - 2 * math.log(2)) < 0.05
    assert 0 < log_vars['adv_weight'] <= cfg.model.loss_adv.loss_weight
    with_generator = disc_losses[40:]
    means = [
        sum(with_generator[i:i + 5]) / 5
        for i in range(len(with_generator) - 4)
    ]
    assert min(means) < 1.2, str([round(x, 2) for x in disc_losses])


def test_train_step_without_discriminator(cfg):
    model = build_model(cfg, discriminator=None)
    optim_wrapper = OptimWrapper(
        torch.optim.AdamW(model.parameters(), lr=1e-4))
    data = dict(
        inputs=[draw_clip()['inputs']],
        data_samples=[draw_clip()['data_samples']])
    log_vars = model.train_step(data, optim_wrapper)
    assert 'loss' in log_vars and 'loss_adv' not in log_vars
    with pytest.raises(TypeError, match='OptimWrapperDict'):
        build_model(cfg).train_step(data, optim_wrapper)


@pytest.fixture(scope='module')
def predictions(cfg):
    """The tiny model's predictions (random weights) for two videos of 3
    and 4 frames (2 in training)."""
    model = build_model(cfg)
    model.eval()
    outputs = []
    for video_id, num_frames in enumerate((3, 4)):
        data = batch(
            model, [draw_clip(num_frames, video_id=video_id)], training=False)
        with torch.no_grad():
            outputs += model.forward(**data, mode='predict')
    return outputs


def vis_metric(**kwargs):
    metric = METRICS.build(dict(type='VISMetric', **kwargs))
    metric.dataset_meta = dict(classes=('a', 'b', 'c', 'd'))
    return metric


def evaluate(outputs, **kwargs):
    metric = vis_metric(**kwargs)
    for output in outputs:
        metric.process({}, [output.to_dict()])
    return metric.evaluate(size=len(outputs))


def test_predict_output_feeds_the_vis_metric(cfg, predictions, tmp_path):
    # random weights: the AP values are unknown, only the structure is
    # checked here (known APs: test_vis_metric_on_gt_tracks_in_the_output)
    max_per_video = cfg.model.track_head.test_cfg.max_per_video
    num_tracks = []
    for output, num_frames in zip(predictions, (3, 4)):
        frames = output.video_data_samples
        assert len(frames) == num_frames
        pred = frames[0].pred_track_instances
        assert 0 < len(pred) <= max_per_video
        assert pred.masks.shape[1:] == (64, 64)
        assert ((pred.labels >= 0) & (pred.labels < 4)).all()
        num_tracks.append(len(pred))
    results = evaluate(predictions)
    assert set(results) == set(METRIC_KEYS)
    assert all(math.isfinite(v) for v in results.values())

    prefix = tmp_path / 'results'
    assert evaluate(
        predictions, format_only=True, outfile_prefix=str(prefix)) == {}
    with open(f'{prefix}.json') as f:
        tracks = json.load(f)
    with zipfile.ZipFile(f'{prefix}.submission_file.zip') as zf:
        assert zf.namelist() == ['results.json']
        assert json.loads(zf.read('results.json')) == tracks
    # one entry per predicted track, a mask (RLE) per frame of its video
    assert [sum(t['video_id'] == v for t in tracks)
            for v in (0, 1)] == num_tracks
    for t in tracks:
        assert len(t['segmentations']) == 3 + t['video_id']
        assert t['category_id'] in (1, 2, 3, 4)
        assert 0 <= t['score'] <= 1


def with_gt_tracks(outputs, label_map):
    """Copies of the model outputs that predict the GT tracks of
    :func:`draw_clip` exactly, with class ``label_map[label]`` (a label
    missing from ``label_map`` is not predicted)."""
    outputs = copy.deepcopy(outputs)
    for output in outputs:
        for frame in output.video_data_samples:
            kept = [i for i in frame.instances if i['bbox_label'] in label_map]
            masks = [mask_util.decode(i['mask']).astype(bool) for i in kept]
            frame.pred_track_instances = InstanceData(
                masks=torch.from_numpy(np.stack(masks)),
                bboxes=torch.zeros(len(kept), 4),
                scores=torch.full((len(kept), ), 0.9),
                labels=torch.tensor([label_map[i['bbox_label']]
                                     for i in kept]),
                instances_id=torch.tensor([i['instance_id'] for i in kept]))
    return outputs


def test_vis_metric_on_gt_tracks_in_the_output(predictions):
    # Each video has a square (label 0) and a disc (label 3), so classes 0
    # and 3 have 2 GT tracks each and classes 1 and 2 none (their AP is -1,
    # left out of the mean over classes).
    # Both tracks exact in both videos: AP and AR 1 for classes 0 and 3.
    exact = with_gt_tracks(predictions, {0: 0, 3: 3})
    assert evaluate(exact) == dict.fromkeys(METRIC_KEYS, 1.0)
    # exact masks, wrong classes (1 and 2): 0 for classes 0 and 3
    wrong = with_gt_tracks(predictions, {0: 1, 3: 2})
    assert evaluate(wrong) == dict.fromkeys(METRIC_KEYS, 0.0)
    # only the squares: class 0 scores 1, class 3 scores 0; mean 0.5
    squares = with_gt_tracks(predictions, {0: 0})
    assert evaluate(squares) == dict.fromkeys(METRIC_KEYS, 0.5)


def narrow_input_side(cfg, width):
    """The config's backbone at base width ``width`` and its neck to match
    (stage i has width * 2**i channels)."""
    backbone = dict(cfg.model.backbone, base_channels=width)
    neck = dict(
        cfg.model.neck,
        in_channels=[width * 2**i for i in backbone['out_indices']])
    return backbone, neck


def test_overfit_one_clip(cfg):
    # a narrower ResNet-18 (base width 16) keeps this under ~10 s on CPU
    backbone, neck = narrow_input_side(cfg, width=16)
    model = build_model(cfg, backbone=backbone, neck=neck, discriminator=None)
    optim_wrapper = OptimWrapper(
        torch.optim.AdamW(model.parameters(), lr=1e-3))
    clip = draw_clip(num_frames=2, size=(32, 32), absent={(1, 2)})
    totals = []
    for _ in range(25):
        data = dict(
            inputs=[clip['inputs']],
            data_samples=[copy.deepcopy(clip['data_samples'])])
        totals.append(model.train_step(data, optim_wrapper)['loss'].item())
    assert min(totals[-5:]) < 0.5 * totals[0], totals
