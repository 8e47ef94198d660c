"""Adversarial (fg/bg discriminator) pieces of MS-STS VIS training.

See docs/design.md §3c. Standard BCE GAN losses on PatchGAN logits: the
discriminator learns real -> 1 and fake -> 0 on detached inputs; the VIS
model learns fake -> 1 with the discriminator frozen. "Real" is the GT
foreground and "fake" the predicted foreground of the head
(:class:`ForegroundMaps`); this module is the one place where one name
turns into the other.

Shapes use the package notation (``mmvis_msts``): B*T frames, C channels,
H_s and W_s the size at stride s.
"""
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, Iterator, List

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..tracking_heads import ForegroundMaps


@dataclass
class AdversarialInputs:
    """What the discriminator sees of one batch, at its finest stride.

    Attributes:
        frames (Tensor): (B*T, 3, H_8, W_8) frames, average-pooled.
        feats (list[Tensor]): The discriminator's encoder maps
            (B*T, C, H_l, W_l), finest first.
        real (Tensor): (B*T, 1, H_8, W_8) GT foreground, average-pooled.
        fake (Tensor): (B*T, 1, H_8, W_8) predicted foreground
            probabilities, average-pooled; carries the model's gradient.
    """

    frames: Tensor
    feats: List[Tensor]
    real: Tensor
    fake: Tensor


def adversarial_inputs(inputs: Tensor, feats: List[Tensor],
                       fg_maps: ForegroundMaps) -> AdversarialInputs:
    """Bring frames and foreground maps to the size of ``feats[0]``.

    Args:
        inputs (Tensor): (B, T, 3, H, W) normalised frames.
        feats (list[Tensor]): Encoder maps (B*T, C, H_l, W_l) at the levels
            the discriminator takes, finest first.
        fg_maps (ForegroundMaps): The head's (B*T, 1, H_4, W_4) maps.

    Returns:
        AdversarialInputs: Frames and maps at the stride of ``feats[0]``.
    """
    size = feats[0].shape[-2:]
    return AdversarialInputs(
        frames=F.adaptive_avg_pool2d(inputs.flatten(0, 1), size),
        feats=feats,
        real=F.adaptive_avg_pool2d(fg_maps.gt, size),
        fake=F.adaptive_avg_pool2d(fg_maps.pred, size))


def _bce(logits: Tensor, target: float) -> Tensor:
    return F.binary_cross_entropy_with_logits(
        logits, logits.new_full(logits.shape, target))


def discriminator_losses(discriminator: nn.Module,
                         adv: AdversarialInputs) -> Dict[str, Tensor]:
    """BCE(D(real), 1) and BCE(D(fake), 0); inputs are detached.

    Real and fake go through the discriminator as one batch, so a DDP
    wrapper sees a single forward per step.

    Args:
        discriminator (nn.Module): ``FgBgDiscriminator`` (maybe wrapped).
        adv (AdversarialInputs): Output of :func:`adversarial_inputs`.

    Returns:
        dict[str, Tensor]: ``loss_disc_real`` and ``loss_disc_fake``.
    """
    logits = discriminator(adv.frames.detach().repeat(2, 1, 1, 1),
                           [f.detach().repeat(2, 1, 1, 1) for f in adv.feats],
                           torch.cat([adv.real.detach(),
                                      adv.fake.detach()]))
    real_logits, fake_logits = logits.chunk(2)
    return dict(
        loss_disc_real=_bce(real_logits, 1.),
        loss_disc_fake=_bce(fake_logits, 0.))


def generator_loss(discriminator: nn.Module, adv: AdversarialInputs) -> Tensor:
    """BCE(D(fake), 1); gradients reach the features and the fake mask.

    Args:
        discriminator (nn.Module): The unwrapped discriminator.
        adv (AdversarialInputs): Output of :func:`adversarial_inputs`.

    Returns:
        Tensor: Scalar loss (unweighted).
    """
    return _bce(discriminator(adv.frames, adv.feats, adv.fake), 1.)


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Turn off ``requires_grad`` of a module's parameters, then restore."""
    params = list(module.parameters())
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)
