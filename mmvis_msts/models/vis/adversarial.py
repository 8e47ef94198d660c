"""Adversarial (fg/bg discriminator) pieces of MS-STS VIS training.

See docs/design.md §3c. The discriminator D scores per-frame foreground
maps given the frame and its encoder features: "real" is the GT foreground,
"fake" the predicted foreground of the head (:class:`ForegroundMaps`); this
module is the one place where one name turns into the other.

- :class:`AdversarialInputs` is what D sees of a batch.
- :class:`AdversarialLoss` holds the GAN objective (BCE, hinge or LSGAN),
  D's accuracies and margin, and the schedule of the generator term
  (warm-up, then a linear ramp).
- :func:`generator_grads` computes the generator term's gradient at the
  fake map through D only. ``MSSTSVIS`` backpropagates it into the model
  with the VIS losses in one backward pass, or, with
  ``AdversarialLoss(clip_apart=True)``, in a second pass added after the
  VIS loss's grad clip (:func:`added_before_step`).

Shapes use the package notation (``mmvis_msts``): B*T frames, C channels,
L levels, H_s and W_s the size at stride s.
"""
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor, nn
from torch.optim import Optimizer

GAN_TYPES = ('bce', 'hinge', 'lsgan')


@dataclass
class AdversarialInputs:
    """What the discriminator sees of one batch.

    Attributes:
        frames (Tensor): (B*T, 3, H, W) normalised input frames.
        feats (list[Tensor]): The discriminator's encoder maps
            (B*T, C, H_l, W_l), finest first; D only ever sees them
            detached.
        real (Tensor): (B*T, 1, H_4, W_4) GT foreground, binary.
        fake (Tensor): (B*T, 1, H_4, W_4) predicted foreground, binary
            where a matched query covers a pixel, the query's score for an
            unmatched one; straight-through gradient
            (``BaseVISHead.foreground_maps``).
    """

    frames: Tensor
    feats: List[Tensor]
    real: Tensor
    fake: Tensor


@dataclass
class GeneratorGrads:
    """The generator term and its gradient at the fake map.

    Attributes:
        loss (Tensor): The weighted generator loss, detached.
        fake (Tensor): The fake map of the model's graph.
        grad (Tensor): Its gradient, clipped when ``max_grad_norm`` is set.
    """

    loss: Tensor
    fake: Tensor
    grad: Tensor

    def surrogate(self) -> Tensor:
        """A scalar of the model's graph whose gradient at the fake map is
        :attr:`grad`: added to the VIS loss, one backward pass carries
        both terms."""
        return (self.fake * self.grad).sum()

    def backward(self) -> None:
        """Backpropagate the gradient into the model."""
        # a fake map without any query (no GT, no unmatched queries taken)
        # is a constant
        if self.fake.requires_grad:
            self.fake.backward(self.grad)


@MODELS.register_module()
class AdversarialLoss(nn.Module):
    """GAN losses of the fg/bg discriminator and the generator's schedule.

    With ``r``, ``f`` D's patch logits on real and fake inputs (averaged
    over patches and frames):

    ======  ===============================  =====================
    type    D: real + fake                   generator (on ``f``)
    ======  ===============================  =====================
    bce     softplus(-r) + softplus(f)       softplus(-f)
    hinge   relu(1 - r) + relu(1 + f)        -f
    lsgan   (r - 1)^2 + f^2                  (f - 1)^2
    ======  ===============================  =====================

    The BCE generator loss is the non-saturating one. D's decision
    threshold is 0 (0.5 for LSGAN, whose targets are 1 and 0), from which
    :meth:`discriminator_stats` counts its accuracy.

    The generator term is weighted by :meth:`weight`: 0 for the first
    ``warmup_iters`` iterations (D learns alone, on the model's early
    predictions; a D at chance gives the encoder noise), then a linear ramp
    to ``loss_weight`` over ``ramp_iters`` iterations, then constant.

    Args:
        gan_type (str): One of ``'bce'``, ``'hinge'``, ``'lsgan'``.
            Defaults to ``'hinge'``.
        loss_weight (float): Final weight of the generator term. Defaults to
            0.1.
        warmup_iters (int): Iterations without the generator term. Defaults
            to 0.
        ramp_iters (int): Iterations of the linear ramp after the warm-up.
            Defaults to 0.
        max_grad_norm (float, optional): Clip the generator term's gradient
            at the fake map to this L2 norm, apart from the VIS loss's clip.
            Defaults to None (no clip).
        clip_apart (bool): Add the generator term's gradient to the model's
            after the model optimiser's grad clip, which then clips the VIS
            gradient alone. This costs a second backward pass through the
            model (about 1.5x the time of a training step). Defaults to
            False: one backward pass of the VIS loss plus the generator
            term, clipped together, as with any sum of losses.
        grad_norm_interval (int): Log ``adv_grad_norm_enc`` and
            ``vis_grad_norm_enc`` (each term's gradient at the encoder
            maps) every this many iterations; each takes a partial backward
            pass down to those maps. Defaults to 10.
    """

    def __init__(self,
                 gan_type: str = 'hinge',
                 loss_weight: float = 0.1,
                 warmup_iters: int = 0,
                 ramp_iters: int = 0,
                 max_grad_norm: Optional[float] = None,
                 clip_apart: bool = False,
                 grad_norm_interval: int = 10) -> None:
        super().__init__()
        if gan_type not in GAN_TYPES:
            raise ValueError(f'gan_type must be one of {GAN_TYPES}, got '
                             f'{gan_type!r}')
        if warmup_iters < 0 or ramp_iters < 0:
            raise ValueError('warmup_iters and ramp_iters must be >= 0, got '
                             f'{warmup_iters} and {ramp_iters}')
        if grad_norm_interval < 1:
            raise ValueError('grad_norm_interval must be >= 1, got '
                             f'{grad_norm_interval}')
        self.gan_type = gan_type
        self.loss_weight = loss_weight
        self.warmup_iters = warmup_iters
        self.ramp_iters = ramp_iters
        self.max_grad_norm = max_grad_norm
        self.clip_apart = clip_apart
        self.grad_norm_interval = grad_norm_interval

    @property
    def threshold(self) -> float:
        """D's decision threshold on a logit."""
        return 0.5 if self.gan_type == 'lsgan' else 0.

    def logs_grad_norms(self, iteration: int) -> bool:
        """Whether a 0-based iteration logs the gradient norms at the
        encoder maps (every ``grad_norm_interval``)."""
        return iteration % self.grad_norm_interval == 0

    def weight(self, iteration: int) -> float:
        """Weight of the generator term at a 0-based iteration."""
        if iteration < self.warmup_iters:
            return 0.
        done = iteration - self.warmup_iters + 1
        return self.loss_weight * min(1., done / max(self.ramp_iters, 1))

    def discriminator_loss(self, real: Tensor,
                           fake: Tensor) -> Dict[str, Tensor]:
        """D's losses on its real and fake logits.

        Args:
            real (Tensor): (B*T, 1, H_l, W_l) logits on real inputs.
            fake (Tensor): (B*T, 1, H_l, W_l) logits on fake inputs.

        Returns:
            dict[str, Tensor]: ``loss_disc_real`` and ``loss_disc_fake``.
        """
        if self.gan_type == 'bce':
            terms = F.softplus(-real), F.softplus(fake)
        elif self.gan_type == 'hinge':
            terms = F.relu(1 - real), F.relu(1 + fake)
        else:
            terms = (real - 1).square(), fake.square()
        return dict(
            loss_disc_real=terms[0].mean(), loss_disc_fake=terms[1].mean())

    def generator_loss(self, fake: Tensor) -> Tensor:
        """The model's loss on D's fake logits (unweighted).

        Args:
            fake (Tensor): (B*T, 1, H_l, W_l) logits on fake inputs.

        Returns:
            Tensor: Scalar loss.
        """
        if self.gan_type == 'bce':
            return F.softplus(-fake).mean()
        if self.gan_type == 'hinge':
            return -fake.mean()
        return (fake - 1).square().mean()

    def discriminator_stats(self, real: Tensor,
                            fake: Tensor) -> Dict[str, Tensor]:
        """D's patch accuracy on real and fake inputs and its margin.

        Args:
            real (Tensor): (B*T, 1, H_l, W_l) logits on real inputs.
            fake (Tensor): (B*T, 1, H_l, W_l) logits on fake inputs.

        Returns:
            dict[str, Tensor]: ``disc_acc_real`` (fraction of real patches
            above the threshold), ``disc_acc_fake`` (fake patches below
            it) and ``disc_margin`` (mean real minus mean fake logit), all
            detached.
        """
        real, fake = real.detach(), fake.detach()
        return dict(
            disc_acc_real=(real > self.threshold).float().mean(),
            disc_acc_fake=(fake < self.threshold).float().mean(),
            disc_margin=real.mean() - fake.mean())


def discriminator_logits(discriminator: nn.Module,
                         adv: AdversarialInputs) -> Tuple[Tensor, Tensor]:
    """D's logits on the real and the fake inputs, all inputs detached.

    Real and fake go through the discriminator as one batch, so a DDP
    wrapper sees a single forward per step.

    Args:
        discriminator (nn.Module): ``FgBgDiscriminator`` (maybe wrapped).
        adv (AdversarialInputs): What D sees of the batch.

    Returns:
        tuple[Tensor, Tensor]: (B*T, 1, H_l, W_l) real and fake logits.
    """
    logits = discriminator(adv.frames.detach().repeat(2, 1, 1, 1),
                           [f.detach().repeat(2, 1, 1, 1) for f in adv.feats],
                           torch.cat([adv.real.detach(),
                                      adv.fake.detach()]))
    real, fake = logits.chunk(2)
    return real, fake


def generator_grads(discriminator: nn.Module, loss_adv: AdversarialLoss,
                    adv: AdversarialInputs, weight: float) -> GeneratorGrads:
    """The weighted generator term and its gradient at the fake map.

    D sees the encoder maps detached: the generator term reaches the model
    only through the fake map, and through it the mask head and the
    encoder maps the mask features are made of. So every bit of its
    gradient in the encoder depends on the predicted masks. A path through
    D's feature input was tried (also in a relative form that cancels the
    directions moving D's real and fake scores alike) and collapsed D to
    chance: the generator moved the shared features a little in the
    directions D is most sensitive to (docs/design.md §3c).

    D runs on a detached copy of the fake map, so the backward pass stops
    there and costs one D backward; the gradient is then clipped apart
    (``max_grad_norm``) and backpropagated into the model by the model
    update (:meth:`GeneratorGrads.surrogate` in the VIS loss's backward, or
    :meth:`GeneratorGrads.backward` with ``clip_apart``). Call it with D
    frozen (:func:`frozen`).

    Args:
        discriminator (nn.Module): The unwrapped discriminator (no DDP
            reduction for its frozen weights).
        loss_adv (AdversarialLoss): The objective.
        adv (AdversarialInputs): What D sees of the batch.
        weight (float): The generator term's weight now.

    Returns:
        GeneratorGrads: The loss, the fake map and its gradient.
    """
    leaf = adv.fake.detach().requires_grad_()
    logits = discriminator(adv.frames, [f.detach() for f in adv.feats], leaf)
    loss = weight * loss_adv.generator_loss(logits)
    grad, = torch.autograd.grad(loss, leaf)
    if loss_adv.max_grad_norm is not None:
        grad = grad * (loss_adv.max_grad_norm /
                       (grad.norm() + 1e-6)).clamp(max=1.)
    return GeneratorGrads(loss=loss.detach(), fake=adv.fake, grad=grad)


def grad_norm_at(output: Tensor, feats: List[Tensor]) -> Tensor:
    """The L2 norm of ``output``'s gradient at the maps ``feats``.

    A partial backward pass from ``output`` down to ``feats`` (the graph is
    kept for the update's own backward).

    Args:
        output (Tensor): A scalar of the model's graph.
        feats (list[Tensor]): Tensors of the same graph.

    Returns:
        Tensor: The norm over all maps (0 for maps ``output`` does not
        depend on).
    """
    if not output.requires_grad:
        return feats[0].new_zeros(())
    grads = torch.autograd.grad(
        output, feats, retain_graph=True, allow_unused=True)
    norms = [g.norm() for g in grads if g is not None]
    return torch.stack(norms).norm() if norms else feats[0].new_zeros(())


@contextmanager
def added_before_step(optimizer: Optimizer,
                      add_grads: Callable[[], None]) -> Iterator[None]:
    """Run ``add_grads`` inside ``optimizer.step``, before the update.

    mmengine's ``OptimWrapper.step`` clips the gradients, then calls
    ``optimizer.step``; a step pre-hook runs after the clip, so gradients
    added here stay out of it.

    Args:
        optimizer (Optimizer): The torch optimizer of the wrapper.
        add_grads (Callable[[], None]): Accumulates into ``.grad``.
    """
    handle = optimizer.register_step_pre_hook(lambda *_: add_grads())
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Freeze a module: no ``requires_grad``, eval mode; then restore.

    Eval mode keeps the generator pass from changing any state of D
    (dropout, running statistics) should a config add such layers.
    """
    params = list(module.parameters())
    flags = [p.requires_grad for p in params]
    training = module.training
    for p in params:
        p.requires_grad_(False)
    module.eval()
    try:
        yield
    finally:
        module.train(training)
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)
