"""MSSTSVIS.train_step stops or skips a step with a NaN or infinite loss.

The tiny synthetic config on drawn clips; one loss term is poisoned by
wrapping the function that computes it. The reference for "untouched" is
the state before the step, and a healthy step must change it (so the
assertions could fail).
"""
import copy
import math

import pytest
import torch
from mmdet.registry import OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.optim import OptimWrapper, OptimWrapperDict
# helpers of the MSSTSVIS tests (same folder; pytest puts it on sys.path)
from test_mssts_vis import build_model, cfg, draw_clip  # noqa: F401

from mmvis_msts.models.vis.loss_guard import (SKIPPED_STEPS_KEY,
                                              NonFiniteLossError)

# 0-based, as the runner records it; messages say 'iteration 8'
ITER = 7


@pytest.fixture
def message_hub(fresh_message_hub):
    """The test's message hub at iteration ``ITER``, as the train loop
    keeps it."""
    fresh_message_hub.update_info('iter', ITER)
    return fresh_message_hub


def clips_batch():
    """Videos 3 and 5, two frames each."""
    clips = [draw_clip(video_id=3), draw_clip(video_id=5)]
    return dict(
        inputs=[c['inputs'] for c in clips],
        data_samples=[c['data_samples'] for c in clips])


def snapshot(model):
    """The weights (and buffers), copied."""
    return copy.deepcopy(model.state_dict())


def assert_same_weights(before, model, names=None):
    for name, value in model.state_dict().items():
        if names is None or name in names:
            assert torch.equal(value, before[name]), name


def optimizer_steps(optim_wrapper):
    """Steps taken by each optimizer (its per-tensor state appears then)."""
    wrappers = optim_wrapper.values() if isinstance(
        optim_wrapper, OptimWrapperDict) else [optim_wrapper]
    return [len(w.optimizer.state) for w in wrappers]


def poison_head_loss(monkeypatch, model, term, value):
    """Make the head's loss ``term`` equal ``value`` (NaN or inf)."""
    head = model.track_head
    loss_by_feat = head.loss_by_feat

    def poisoned(*args, **kwargs):
        losses = loss_by_feat(*args, **kwargs)
        losses[term] = losses[term] * 0 + value
        return losses

    monkeypatch.setattr(head, 'loss_by_feat', poisoned)


def plain_model_and_wrapper(cfg, **overrides):  # noqa: F811
    model = build_model(cfg, discriminator=None, **overrides)
    optim_wrapper = OptimWrapper(
        torch.optim.AdamW(model.parameters(), lr=1e-3))
    return model, optim_wrapper


def adversarial_model_and_wrapper(cfg, **overrides):  # noqa: F811
    model = build_model(cfg, **overrides)
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.build(
        dict(
            type=cfg.optim_wrapper.constructor,
            optim_wrapper_cfg={
                k: v
                for k, v in cfg.optim_wrapper.items() if k != 'constructor'
            }))
    return model, constructor(model)


def test_nan_term_raises_naming_term_iteration_and_videos(
        cfg, message_hub, monkeypatch):  # noqa: F811
    model, optim_wrapper = plain_model_and_wrapper(cfg)
    poison_head_loss(monkeypatch, model, 'd1.loss_mask', math.nan)
    weights = snapshot(model)
    with pytest.raises(NonFiniteLossError) as info:
        model.train_step(clips_batch(), optim_wrapper)
    message = str(info.value)
    assert f'before the model update at iteration {ITER + 1} ' in message
    # only the poisoned term (the finite ones and their sum are not named)
    assert ('logged): d1.loss_mask=nan. Batch: video 3 (frames 0, 1); '
            'video 5 (frames 0, 1).') in message
    assert_same_weights(weights, model)
    assert optimizer_steps(optim_wrapper) == [0]


def test_skip_leaves_weights_and_optimizer_untouched_and_counts(
        cfg, message_hub, monkeypatch):  # noqa: F811
    model, optim_wrapper = plain_model_and_wrapper(cfg, nonfinite_loss='skip')
    healthy = model.track_head.loss_by_feat
    poison_head_loss(monkeypatch, model, 'loss_giou', math.inf)
    weights = snapshot(model)
    for expected_count in (1, 2):
        assert model.train_step(clips_batch(), optim_wrapper) == {}
        assert message_hub.get_info(SKIPPED_STEPS_KEY) == expected_count
    assert_same_weights(weights, model)
    assert optimizer_steps(optim_wrapper) == [0]
    assert all(p.grad is None for p in model.parameters())

    # the next healthy step trains as usual
    monkeypatch.setattr(model.track_head, 'loss_by_feat', healthy)
    log_vars = model.train_step(clips_batch(), optim_wrapper)
    assert math.isfinite(log_vars['loss'].item())
    assert not torch.equal(model.state_dict()['neck.convs.0.conv.weight'],
                           weights['neck.convs.0.conv.weight'])
    assert message_hub.get_info(SKIPPED_STEPS_KEY) == 2


def test_unknown_mode_is_refused(cfg):  # noqa: F811
    with pytest.raises(ValueError, match="one of .'raise', 'skip'.*'warn'"):
        build_model(cfg, nonfinite_loss='warn')


def test_adversarial_nan_in_discriminator_loss_stops_before_any_update(
        cfg, message_hub, monkeypatch):  # noqa: F811
    model, optim_wrapper = adversarial_model_and_wrapper(cfg)
    discriminator_loss = model.loss_adv.discriminator_loss

    def poisoned(real, fake):
        losses = discriminator_loss(real, fake)
        losses['loss_disc_fake'] = losses['loss_disc_fake'] * math.nan
        return losses

    monkeypatch.setattr(model.loss_adv, 'discriminator_loss', poisoned)
    weights = snapshot(model)
    with pytest.raises(
            NonFiniteLossError,
            match=r'before the discriminator update at iteration 8 .*'
            r'loss_disc=nan, loss_disc_fake=nan\. Batch: video 3'):
        model.train_step(clips_batch(), optim_wrapper)
    assert_same_weights(weights, model)
    assert optimizer_steps(optim_wrapper) == [0, 0]


def test_adversarial_inf_adv_loss_skips_the_model_update(
        cfg, message_hub, monkeypatch):  # noqa: F811
    # the generator term on from the start (the config warms D up first)
    model, optim_wrapper = adversarial_model_and_wrapper(
        cfg,
        nonfinite_loss='skip',
        loss_adv=dict(cfg.model.loss_adv, warmup_iters=0, ramp_iters=0))
    generator_loss = model.loss_adv.generator_loss
    monkeypatch.setattr(model.loss_adv, 'generator_loss',
                        lambda *args: generator_loss(*args) * math.inf)
    weights = snapshot(model)
    assert model.train_step(clips_batch(), optim_wrapper) == {}
    assert message_hub.get_info(SKIPPED_STEPS_KEY) == 1
    disc = {k for k in weights if k.startswith('discriminator.')}
    # the model update was skipped; D's own (finite) update went through
    assert_same_weights(weights, model, names=set(weights) - disc)
    assert any(not torch.equal(model.state_dict()[k], weights[k])
               for k in disc)
    assert optimizer_steps(optim_wrapper) == [0, len(disc)]
