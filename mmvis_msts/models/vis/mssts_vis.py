"""MS-STS VIS / SeqFormer video instance segmentation model.

Shapes use the package notation (``mmvis_msts``): B clips, T frames, C
channels, L levels.
"""
from typing import Dict, Optional, Tuple

from mmdet.models.mot import BaseMOTModel
from mmdet.registry import MODELS
from mmdet.structures import TrackDataSample, TrackSampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch import Tensor

from ..utils import unwrap_model
from .adversarial import (AdversarialInputs, adversarial_inputs,
                          discriminator_losses, frozen, generator_loss)


@MODELS.register_module()
class MSSTSVIS(BaseMOTModel):
    """Backbone + neck + VIS head (+ training-only fg/bg discriminator).

    With a ``discriminator`` (docs/design.md §3c), :meth:`train_step`
    alternates a discriminator update (real = union of the GT masks, fake =
    pixel-wise max of the matched mask probabilities of the last decoder
    layer, both at the stride of the discriminator's finest level, inputs
    detached) and a model update (VIS losses + ``adv_loss_weight`` x
    BCE(D(fake), 1), D frozen). It then needs an ``OptimWrapperDict`` with
    keys ``model`` and ``discriminator`` (see
    ``VISAdversarialOptimWrapperConstructor``); distributed, ``VISRunner``
    wraps such a model in ``MMSeparateDistributedDataParallel``.

    Args:
        backbone (dict): Backbone config (mmdet ResNet / SwinTransformer).
        neck (dict): Neck config (mmdet ChannelMapper, L outputs).
        track_head (dict): ``MSSTSVISHead`` config.
        discriminator (dict, optional): ``FgBgDiscriminator`` config.
        adv_loss_weight (float): Weight of the adversarial term.
            Defaults to 0.1.
        data_preprocessor (dict, optional): ``TrackDataPreprocessor``.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: ConfigType,
                 neck: ConfigType,
                 track_head: ConfigType,
                 discriminator: OptConfigType = None,
                 adv_loss_weight: float = 0.1,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck)
        self.track_head = MODELS.build(track_head)
        self.discriminator = None if discriminator is None else \
            MODELS.build(discriminator)
        self.adv_loss_weight = adv_loss_weight
        self.num_classes = self.track_head.num_classes

    @property
    def with_discriminator(self) -> bool:
        """Whether adversarial training is on."""
        return self.discriminator is not None

    def extract_feat(self, inputs: Tensor) -> Tuple[Tensor]:
        """(B, T, 3, H, W) -> L neck maps (B*T, C, H_l, W_l)."""
        if inputs.dim() != 5:
            raise ValueError('inputs must be (B, T, C, H, W), got shape '
                             f'{tuple(inputs.shape)}')
        return self.neck(self.backbone(inputs.flatten(0, 1)))

    def _vis_loss(
        self, inputs: Tensor, data_samples: TrackSampleList
    ) -> Tuple[Dict[str, Tensor], Optional[AdversarialInputs]]:
        """VIS losses and, with a discriminator, its inputs.

        Returns:
            tuple: The head's losses, and the :class:`AdversarialInputs`
            (None without a discriminator).
        """
        # forward through the (maybe DDP-wrapped) head, methods on the head
        head_outs = self.track_head(self.extract_feat(inputs), data_samples)
        head = unwrap_model(self.track_head)
        targets = head.get_targets(head_outs, data_samples)
        losses = head.loss_by_feat(head_outs, targets)
        if not self.with_discriminator:
            return losses, None
        num_levels = unwrap_model(self.discriminator).num_levels
        adv = adversarial_inputs(inputs, head_outs.mlvl_memory[:num_levels],
                                 head.foreground_maps(head_outs, targets))
        return losses, adv

    def _adv_loss(self, adv: AdversarialInputs) -> Tensor:
        # the unwrapped D: no DDP reduction for its frozen weights
        return self.adv_loss_weight * generator_loss(
            unwrap_model(self.discriminator), adv)

    def loss(self, inputs: Tensor, data_samples: TrackSampleList,
             **kwargs) -> Dict[str, Tensor]:
        """VIS losses (+ ``loss_adv`` when the discriminator is on).

        Args:
            inputs (Tensor): (B, T, C, H, W) normalised frames.
            data_samples (list[TrackDataSample]): B clips with GT.
        """
        losses, adv = self._vis_loss(inputs, data_samples)
        if adv is not None:
            losses['loss_adv'] = self._adv_loss(adv)
        return losses

    def train_step(self, data: dict,
                   optim_wrapper: OptimWrapper) -> Dict[str, Tensor]:
        """One step; a D update then a model update when D is on."""
        if not self.with_discriminator:
            return super().train_step(data, optim_wrapper)
        if not isinstance(optim_wrapper, OptimWrapperDict) or \
                set(optim_wrapper.keys()) != {'model', 'discriminator'}:
            raise TypeError('with a discriminator, optim_wrapper must be an '
                            "OptimWrapperDict with keys 'model' and "
                            f"'discriminator', got {optim_wrapper!r}")
        model_wrapper = optim_wrapper['model']
        disc_wrapper = optim_wrapper['discriminator']
        with model_wrapper.optim_context(self):
            data = self.data_preprocessor(data, True)
            losses, adv = self._vis_loss(**data)
        with disc_wrapper.optim_context(self.discriminator):
            disc_losses = discriminator_losses(self.discriminator, adv)
        disc_loss, disc_log = self.parse_losses(disc_losses)
        disc_wrapper.update_params(disc_loss)
        with frozen(self.discriminator):
            with model_wrapper.optim_context(self):
                losses['loss_adv'] = self._adv_loss(adv)
            loss, log_vars = self.parse_losses(losses)
            model_wrapper.update_params(loss)
        log_vars['loss_disc'] = disc_log.pop('loss')
        log_vars.update(disc_log)
        return log_vars

    def predict(self,
                inputs: Tensor,
                data_samples: TrackSampleList,
                rescale: bool = True) -> TrackSampleList:
        """Segment whole videos in one pass (D unused).

        Args:
            inputs (Tensor): (B, T, C, H, W), all frames of each video.
            data_samples (list[TrackDataSample]): B videos.
            rescale (bool): Masks at the original frame size.

        Returns:
            list[TrackDataSample]: Frames with ``pred_track_instances``.
        """
        video_results = unwrap_model(self.track_head).predict(
            self.extract_feat(inputs), data_samples, rescale)
        outputs = []
        for sample, frame_results in zip(data_samples, video_results):
            for frame_id, pred in enumerate(frame_results):
                sample[frame_id].pred_track_instances = pred
            result = TrackDataSample()
            result.video_data_samples = [sample[i] for i in range(len(sample))]
            outputs.append(result)
        return outputs
