"""Adversarial (fg/bg discriminator) pieces of MS-STS VIS training (DESIGN 3c).

Standard BCE GAN losses on PatchGAN logits: the discriminator learns
real -> 1 and fake -> 0 on detached inputs; the VIS model learns fake -> 1
with the discriminator frozen.
"""
from contextlib import contextmanager
from typing import Dict, Iterator, List

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _bce(logits: Tensor, target: float) -> Tensor:
    return F.binary_cross_entropy_with_logits(
        logits, logits.new_full(logits.shape, target))


def discriminator_losses(discriminator: nn.Module, frames: Tensor,
                         feats: List[Tensor], real: Tensor,
                         fake: Tensor) -> Dict[str, Tensor]:
    """BCE(D(real), 1) and BCE(D(fake), 0); inputs are detached.

    Real and fake go through the discriminator as one batch, so a DDP
    wrapper sees a single forward per step.

    Args:
        discriminator (nn.Module): ``FgBgDiscriminator`` (maybe wrapped).
        frames (Tensor): (N, 3, H8, W8) frames at stride 8.
        feats (list[Tensor]): Encoder maps (N, C, H_l, W_l), strides 8/16/32.
        real (Tensor): (N, 1, H8, W8) GT foreground.
        fake (Tensor): (N, 1, H8, W8) predicted foreground probabilities.

    Returns:
        dict[str, Tensor]: ``loss_disc_real`` and ``loss_disc_fake``.
    """
    logits = discriminator(frames.detach().repeat(2, 1, 1, 1),
                           [f.detach().repeat(2, 1, 1, 1) for f in feats],
                           torch.cat([real.detach(),
                                      fake.detach()]))
    real_logits, fake_logits = logits.chunk(2)
    return dict(
        loss_disc_real=_bce(real_logits, 1.),
        loss_disc_fake=_bce(fake_logits, 0.))


def generator_loss(discriminator: nn.Module, frames: Tensor,
                   feats: List[Tensor], fake: Tensor) -> Tensor:
    """BCE(D(fake), 1); gradients reach the features and the fake mask.

    Args:
        discriminator (nn.Module): The unwrapped discriminator.
        frames, feats, fake: As in :func:`discriminator_losses`.

    Returns:
        Tensor: Scalar loss (unweighted).
    """
    return _bce(discriminator(frames, feats, fake), 1.)


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
