import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS

import mmvis_msts  # noqa: F401
from mmvis_msts.models.discriminators import FgBgDiscriminator
from mmvis_msts.models.discriminators.fgbg_discriminator import \
    condition_on_mask
from mmvis_msts.models.vis.adversarial import (AdversarialInputs,
                                               AdversarialLoss,
                                               discriminator_logits)

CHANNELS = 16


def build(**kwargs):
    torch.manual_seed(0)
    cfg = dict(
        type='FgBgDiscriminator',
        in_channels=CHANNELS,
        channels=16,
        head_channels=(32, ))
    return MODELS.build(dict(cfg, **kwargs))


def make_inputs(num=2, size=(15, 22), generator=None):
    """Frames (stride 1), features at strides 8/16/32 (ceil-halved) and a
    mask at stride 4, all random."""
    h, w = size
    sizes = [(h, w), ((h + 1) // 2, (w + 1) // 2),
             ((h + 3) // 4, (w + 3) // 4)]
    frames = torch.randn(num, 3, 8 * h, 8 * w, generator=generator)
    feats = [
        torch.randn(num, CHANNELS, *s, generator=generator) for s in sizes
    ]
    mask = (torch.rand(num, 1, 2 * h, 2 * w, generator=generator)
            > 0.5).float()
    return frames, feats, mask


def test_shapes_and_registry():
    disc = build()
    assert isinstance(disc, FgBgDiscriminator) and disc.num_levels == 3
    frames, feats, mask = make_inputs()
    assert disc(frames, feats, mask).shape == (2, 1, 4, 6)


def test_condition_on_mask_splits_every_channel():
    x = torch.randn(2, 5, 3, 4)
    mask = torch.rand(2, 1, 3, 4)
    out = condition_on_mask(x, mask)
    assert out.shape == (2, 11, 3, 4)
    torch.testing.assert_close(out[:, :5], x * mask)
    torch.testing.assert_close(out[:, 5:10], x * (1 - mask))
    torch.testing.assert_close(out[:, 10:], mask)
    # an all-foreground mask leaves nothing in the background half: no
    # channel carries the features independently of the mask
    assert not condition_on_mask(x, torch.ones_like(mask))[:, 5:10].any()


def test_coarse_levels_are_conditioned_too():
    # the same change of the stride-32 features moves D's output by
    # different amounts under two masks: the coarse level enters through
    # the mask, not beside it
    disc = build().eval()
    frames, feats, mask = make_inputs()
    bumped = [*feats[:2], feats[2] + 1]
    with torch.no_grad():
        deltas = [
            disc(frames, bumped, m) - disc(frames, feats, m)
            for m in (torch.zeros_like(mask), torch.ones_like(mask))
        ]
    assert (deltas[0] - deltas[1]).abs().max() > 1e-3


def test_gradients_reach_inputs_and_parameters():
    disc = build()
    frames, feats, mask = make_inputs()
    feats = [f.requires_grad_() for f in feats]
    mask.requires_grad_()
    disc(frames, feats, mask).mean().backward()
    for name, param in disc.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    for feat in feats:
        assert feat.grad.abs().sum() > 0
    assert mask.grad.abs().sum() > 0


def test_default_parameter_count():
    params = sum(p.numel() for p in FgBgDiscriminator().parameters())
    # Hand count of the defaults (C = 256, 3 levels, channels 64, head
    # (128, 256), GN(1) on every conv but the logits, so those convs have
    # no bias): 1x1 entries on 2 * (3 + 256) + 1 = 519 and 2 * 256 + 1 = 513
    # channels: 519 * 64 + 2 * 513 * 64; the stride-8 3x3 conv and two
    # stride-2 3x3 convs 64 -> 64: 3 * 36,864; head 3x3 convs 64 -> 128 and
    # 128 -> 256: 73,728 + 294,912; GN weight and bias after each of those
    # 8 convs: 2 * (3 * 64 + 3 * 64 + 128 + 256); logits 3x3 conv 256 -> 1
    # with bias: 2,305.
    assert params == (519 * 64 + 2 * 513 * 64 + 3 * 36_864 + 73_728 + 294_912 +
                      2 * (6 * 64 + 128 + 256) + 2_305)
    # The mask-stride entry (width 16): 3x3 convs on 2 * 3 + 1 = 7
    # channels -> 16, 16 -> 16 and 16 -> 64 (stride 2): 1,008 + 2,304 +
    # 9,216, with GN weight and bias: 2 * (16 + 16 + 64).
    with_entry = FgBgDiscriminator(mask_stride_channels=16)
    assert sum(
        p.numel()
        for p in with_entry.parameters()) == params + (1_008 + 2_304 + 9_216 +
                                                       2 * (16 + 16 + 64))


def test_bad_inputs():
    disc = build()
    frames, feats, mask = make_inputs()
    with pytest.raises(ValueError, match='expected 3 encoder levels'):
        disc(frames, feats[:2], mask)
    with pytest.raises(ValueError, match=r'\(2, 16, H, W\)'):
        disc(frames, [feats[0][:, :8], *feats[1:]], mask)
    with pytest.raises(ValueError, match='level 2 has size'):
        disc(frames, [*feats[:2], feats[2][..., :-1]], mask)


MASK_SIZE = 16  # stride 4 of a 64 x 64 frame: 2 x 2 patches at stride 32


def disc_masks(num, generator):
    """GT-like discs at stride 4 and the same discs shifted by 2 pixels and
    dilated by 1: the "predicted" masks D must tell from the GT."""
    ys, xs = torch.meshgrid(
        torch.arange(MASK_SIZE), torch.arange(MASK_SIZE), indexing='ij')
    cy, cx = torch.randint(4, 12, (2, num, 1, 1), generator=generator)
    radius = torch.randint(2, 5, (num, 1, 1), generator=generator)
    real = ((ys - cy)**2 + (xs - cx)**2 <= radius**2).float()[:, None]
    fake = F.max_pool2d(
        torch.roll(real, shifts=(2, 2), dims=(2, 3)), 3, stride=1, padding=1)
    return real, fake


def random_batch(num, generator):
    """Fresh random frames and features, GT discs, shifted-dilated fakes."""
    frames, feats, _ = make_inputs(num, (8, 8), generator)
    real, fake = disc_masks(num, generator)
    return AdversarialInputs(frames=frames, feats=feats, real=real, fake=fake)


@pytest.fixture(scope='module')
def trained():
    """D trained for 400 steps (BCE) on batches of 8, the learning rate
    decaying linearly to 0.1x (it settles D's bias): ~4 s on one core."""
    disc = build()
    loss = AdversarialLoss(gan_type='bce')
    optimizer = torch.optim.AdamW(
        disc.parameters(), lr=2e-3, betas=(0.5, 0.999))
    scheduler = torch.optim.lr_scheduler.LinearLR(
        optimizer, 1., 0.1, total_iters=400)
    g = torch.Generator().manual_seed(0)
    for _ in range(400):
        real, fake = discriminator_logits(disc, random_batch(8, g))
        total = sum(loss.discriminator_loss(real, fake).values())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        scheduler.step()
    return disc.eval(), loss


def test_discriminator_alone_learns_shape_and_placement(trained):
    # (a): the features and frames are noise, new at every step; only the
    # masks' shape and placement separate real from fake
    disc, loss = trained
    with torch.no_grad():
        real, fake = discriminator_logits(
            disc, random_batch(64,
                               torch.Generator().manual_seed(1)))
    stats = loss.discriminator_stats(real, fake)
    accuracy = (stats['disc_acc_real'] + stats['disc_acc_fake']) / 2
    assert accuracy > 0.8, stats
    assert stats['disc_margin'] > 0


def test_generator_gradient_points_to_the_gt_mask(trained):
    # (c): minus the generator loss's gradient at the fake mask correlates
    # with GT minus fake: it grows the mask where GT is and the fake is
    # not, and shrinks it where the fake covers background
    disc, loss = trained
    batch = random_batch(16, torch.Generator().manual_seed(2))
    fake = batch.fake.clone().requires_grad_()
    loss.generator_loss(disc(batch.frames, batch.feats, fake)).backward()
    step = -fake.grad.flatten()
    target = (batch.real - batch.fake).flatten()
    corr = torch.corrcoef(torch.stack([step, target]))[0, 1]
    assert corr > 0.05, corr  # 0.11 measured
    # the step is larger where only the GT covers a pixel than where only
    # the fake does
    assert step[target > 0].mean() > step[target < 0].mean()


def jagged(real, generator):
    """The masks with every border pixel (inside or outside) flipped with
    probability 1/2: the same shapes, ragged at stride 4 only."""
    dilated = F.max_pool2d(real, 3, stride=1, padding=1)
    eroded = -F.max_pool2d(-real, 3, stride=1, padding=1)
    border = dilated - eroded
    flip = (torch.rand(real.shape, generator=generator) < 0.5).float()
    return (real + border * flip * (1 - 2 * real)).clamp(0, 1)


def fine_detail_accuracy(mask_stride_channels):
    """Held-out accuracy of D trained 300 steps on GT discs versus the same
    discs with ragged borders (random frames and features), hinge loss
    as in the main job."""
    disc = build(mask_stride_channels=mask_stride_channels)
    loss = AdversarialLoss(gan_type='hinge')
    # lr 1e-3: at 2e-3 the accuracy with the entry ranged from 0.50 to 1.0
    # over 3 data seeds at 1 and 2 threads (with 2 threads seed 0 fell
    # back to chance after about 90 steps: float rounding decided); at
    # 1e-3 all six ended at 0.98-1.0 with the entry, 0.60-0.65 without
    optimizer = torch.optim.AdamW(
        disc.parameters(), lr=1e-3, betas=(0.5, 0.999))
    g = torch.Generator().manual_seed(0)

    def batch(num):
        adv = random_batch(num, g)
        adv.fake = jagged(adv.real, g)
        return adv

    for _ in range(300):
        total = sum(
            loss.discriminator_loss(
                *discriminator_logits(disc, batch(8))).values())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    with torch.no_grad():
        stats = loss.discriminator_stats(
            *discriminator_logits(disc.eval(), batch(64)))
    return float(stats['disc_acc_real'] + stats['disc_acc_fake']) / 2


def test_mask_stride_entry_sees_border_detail():
    # ragged borders vanish in the average pooling to stride 8; the
    # mask-stride entry sees them at the mask's own stride
    with_entry = fine_detail_accuracy(16)
    assert with_entry > 0.8
    assert with_entry > fine_detail_accuracy(0) + 0.1
