"""MS-STS VIS / SeqFormer video instance segmentation model."""
from typing import Dict, Tuple

import torch.nn.functional as F
from mmdet.models.mot import BaseMOTModel
from mmdet.registry import MODELS
from mmdet.structures import TrackDataSample, TrackSampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch import Tensor, nn

from .adversarial import discriminator_losses, frozen, generator_loss


def _unwrap(module: nn.Module) -> nn.Module:
    """The module inside a (separate) DDP wrapper."""
    return module.module if is_model_wrapper(module) else module


@MODELS.register_module()
class MSSTSVIS(BaseMOTModel):
    """Backbone + neck + VIS head (+ training-only fg/bg discriminator).

    With a ``discriminator`` (DESIGN 3c), :meth:`train_step` alternates a
    discriminator update (real = union of the GT masks, fake = pixel-wise
    max of the matched mask probabilities of the last decoder layer, both
    at stride 8, inputs detached) and a model update (VIS losses +
    ``adv_loss_weight`` x BCE(D(fake), 1), D frozen). It then needs an
    ``OptimWrapperDict`` with keys ``model`` and ``discriminator`` (see
    ``VISAdversarialOptimWrapperConstructor``); for multi-GPU training wrap
    the model in ``MMSeparateDistributedDataParallel``.

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
    ) -> Tuple[Dict[str, Tensor], Dict[str, object]]:
        """VIS losses and the discriminator inputs, all at stride 8."""
        head_outs = self.track_head(self.extract_feat(inputs), data_samples)
        losses, fg_maps = _unwrap(self.track_head).loss_by_feat(
            head_outs, data_samples)
        feats = head_outs['mlvl_memory'][:3]
        size = feats[0].shape[-2:]
        adv_inputs = dict(
            frames=F.adaptive_avg_pool2d(inputs.flatten(0, 1), size),
            feats=feats,
            real=F.adaptive_avg_pool2d(fg_maps['gt'], size),
            fake=F.adaptive_avg_pool2d(fg_maps['pred'], size))
        return losses, adv_inputs

    def _adv_loss(self, adv_inputs: Dict[str, object]) -> Tensor:
        # the unwrapped D: no DDP reduction for its frozen weights
        return self.adv_loss_weight * generator_loss(
            _unwrap(self.discriminator), adv_inputs['frames'],
            adv_inputs['feats'], adv_inputs['fake'])

    def loss(self, inputs: Tensor, data_samples: TrackSampleList,
             **kwargs) -> Dict[str, Tensor]:
        """VIS losses (+ ``loss_adv`` when the discriminator is on).

        Args:
            inputs (Tensor): (B, T, C, H, W) normalised frames.
            data_samples (list[TrackDataSample]): B clips with GT.
        """
        losses, adv_inputs = self._vis_loss(inputs, data_samples)
        if self.with_discriminator:
            losses['loss_adv'] = self._adv_loss(adv_inputs)
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
            losses, adv_inputs = self._vis_loss(**data)
        with disc_wrapper.optim_context(self.discriminator):
            disc_losses = discriminator_losses(self.discriminator,
                                               **adv_inputs)
        disc_loss, disc_log = self.parse_losses(disc_losses)
        disc_wrapper.update_params(disc_loss)
        with frozen(self.discriminator):
            with model_wrapper.optim_context(self):
                losses['loss_adv'] = self._adv_loss(adv_inputs)
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
        video_results = _unwrap(self.track_head).predict(
            self.extract_feat(inputs), data_samples, rescale)
        outputs = []
        for sample, frame_results in zip(data_samples, video_results):
            for frame_id, pred in enumerate(frame_results):
                sample[frame_id].pred_track_instances = pred
            result = TrackDataSample()
            result.video_data_samples = [sample[i] for i in range(len(sample))]
            outputs.append(result)
        return outputs
