"""MS-STS VIS / SeqFormer video instance segmentation model.

Shapes use the package notation (``mmvis_msts``): B clips, T frames, C
channels, L levels.
"""
from collections import deque
from typing import Dict, Iterable, Iterator, Optional, Tuple

from mmdet.models.mot import BaseMOTModel
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample, TrackDataSample, TrackSampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch import Tensor

from ..trackers import LinkCandidates
from ..tracking_heads.vis_postprocess import frame_result, mask_logit_thr
from ..tracking_heads.vis_records import VISHeadOutputs
from ..utils import track_sample, unwrap_model
from .adversarial import (AdversarialInputs, GeneratorGrads, added_before_step,
                          discriminator_logits, frozen, generator_grads,
                          grad_norm_at)
from .clip_windows import clip_settings, iter_windows
from .loss_guard import NONFINITE_LOSS_MODES, check_losses


@MODELS.register_module()
class MSSTSVIS(BaseMOTModel):
    """Backbone + neck + VIS head (+ training-only fg/bg discriminator).

    With a ``discriminator`` (docs/design.md §3c), :meth:`train_step`
    alternates a discriminator update and a model update on one forward
    pass. Real is the GT foreground, fake the predicted foreground of the
    last decoder layer (``BaseVISHead.foreground_maps``: matched queries
    and the ``num_unmatched_queries`` best unmatched ones), both binary at
    the mask-output stride; D sees them with the frames and the encoder
    maps, all detached. The model update adds the generator term of
    ``loss_adv`` (``AdversarialLoss``: GAN type, weight, warm-up and ramp)
    with D frozen, in the same backward pass as the VIS losses (or after
    their grad clip, ``AdversarialLoss(clip_apart=True)``).
    It then needs an ``OptimWrapperDict`` with keys ``model`` and
    ``discriminator`` (see ``VISAdversarialOptimWrapperConstructor``);
    distributed, ``VISRunner`` wraps such a model in
    ``MMSeparateDistributedDataParallel``.

    Every update of :meth:`train_step` waits for a check of its loss terms
    (:mod:`.loss_guard`): with a NaN or infinite term the step raises
    ``NonFiniteLossError`` or, with ``nonfinite_loss='skip'``, updates
    nothing and is counted.

    Args:
        backbone (dict): Backbone config (mmdet ResNet / SwinTransformer).
        neck (dict): Neck config (mmdet ChannelMapper, L outputs).
        track_head (dict): ``MSSTSVISHead`` config.
        discriminator (dict, optional): ``FgBgDiscriminator`` config.
        loss_adv (dict): ``AdversarialLoss`` config, used with a
            discriminator. Defaults to ``dict(type='AdversarialLoss')``.
        num_unmatched_queries (int): Unmatched queries per clip in the fake
            map (by score). Defaults to 10.
        nonfinite_loss (str): What a NaN or infinite loss term does:
            ``'raise'`` (stop the run, naming the term, the iteration and
            the videos) or ``'skip'`` (no update for that step; a warning
            and a count in the log). Defaults to ``'raise'``.
        tracker (dict): The linker of the clip-wise mode (:meth:`predict`),
            ``ClipLinker``. Defaults to ``dict(type='ClipLinker')``.
        data_preprocessor (dict, optional): ``TrackDataPreprocessor``.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: ConfigType,
                 neck: ConfigType,
                 track_head: ConfigType,
                 discriminator: OptConfigType = None,
                 loss_adv: ConfigType = dict(type='AdversarialLoss'),
                 num_unmatched_queries: int = 10,
                 nonfinite_loss: str = 'raise',
                 tracker: ConfigType = dict(type='ClipLinker'),
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if nonfinite_loss not in NONFINITE_LOSS_MODES:
            raise ValueError('nonfinite_loss must be one of '
                             f'{NONFINITE_LOSS_MODES}, got {nonfinite_loss!r}')
        self.nonfinite_loss = nonfinite_loss
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck)
        self.track_head = MODELS.build(track_head)
        self.discriminator = None if discriminator is None else \
            MODELS.build(discriminator)
        self.loss_adv = MODELS.build(loss_adv)
        self.num_unmatched_queries = num_unmatched_queries
        self.tracker = MODELS.build(tracker)
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
        # forward through the (maybe DDP-wrapped) head, methods on the head;
        # float32 once here, whatever autocast made them: the methods below
        # (and D, which may train without autocast) take float32
        head_outs = self.track_head(self.extract_feat(inputs),
                                    data_samples).float()
        head = unwrap_model(self.track_head)
        targets = head.get_targets(head_outs, data_samples)
        losses = head.loss_by_feat(head_outs, targets)
        if not self.with_discriminator:
            return losses, None
        num_levels = unwrap_model(self.discriminator).num_levels
        fg_maps = head.foreground_maps(head_outs, targets,
                                       self.num_unmatched_queries)
        return losses, AdversarialInputs(
            frames=inputs.flatten(0, 1),
            feats=head_outs.mlvl_memory[:num_levels],
            real=fg_maps.gt,
            fake=fg_maps.pred)

    @staticmethod
    def _iteration() -> int:
        """The runner's iteration (0-based; 0 outside a runner)."""
        return MessageHub.get_current_instance().get_info('iter', 0)

    def _adv_weight(self) -> float:
        """The generator term's weight at the runner's iteration."""
        return self.loss_adv.weight(self._iteration())

    def loss(self, inputs: Tensor, data_samples: TrackSampleList,
             **kwargs) -> Dict[str, Tensor]:
        """VIS losses (+ ``loss_adv`` once the generator term is on).

        ``loss_adv`` is computed with the current D, which nothing here
        updates, and reaches the model through the fake map only (D sees
        the encoder maps detached, as in :meth:`train_step`).

        Args:
            inputs (Tensor): (B, T, C, H, W) normalised frames.
            data_samples (list[TrackDataSample]): B clips with GT.
        """
        losses, adv = self._vis_loss(inputs, data_samples)
        weight = self._adv_weight()
        if adv is not None and weight > 0:
            logits = unwrap_model(self.discriminator)(
                adv.frames, [f.detach() for f in adv.feats], adv.fake)
            losses['loss_adv'] = weight * self.loss_adv.generator_loss(logits)
        return losses

    def train_step(self, data: dict,
                   optim_wrapper: OptimWrapper) -> Dict[str, Tensor]:
        """One step whose losses are checked before the update.

        With a discriminator: a D update, then a model update.

        Args:
            data (dict): A batch from the DataLoader.
            optim_wrapper (OptimWrapper): The model's optimizer wrapper; an
                ``OptimWrapperDict`` (``model``, ``discriminator``) with a
                discriminator.

        Returns:
            dict[str, Tensor]: The log vars; empty for a skipped step.

        Raises:
            NonFiniteLossError: With ``nonfinite_loss='raise'``, for a NaN
                or infinite loss term, before the update it would poison.
        """
        if self.with_discriminator:
            return self._adversarial_step(data, optim_wrapper)
        with optim_wrapper.optim_context(self):
            data = self.data_preprocessor(data, True)
            losses = self._run_forward(data, mode='loss')
        loss, log_vars = self.parse_losses(losses)
        if not check_losses(log_vars, data['data_samples'],
                            self.nonfinite_loss, 'model update'):
            return {}
        optim_wrapper.update_params(loss)
        return log_vars

    def _adversarial_step(
            self, data: dict,
            optim_wrapper: OptimWrapperDict) -> Dict[str, Tensor]:
        """A D update, then a model update (VIS losses + ``loss_adv``).

        The VIS and D losses are checked before the D update, ``loss_adv``
        (which needs the updated D) before the model update; a skip there
        keeps the D update of the batch, whose losses were finite.

        Log vars besides the losses: ``disc_acc_real``, ``disc_acc_fake``
        and ``disc_margin`` (``AdversarialLoss.discriminator_stats``, on
        the D update's inputs, before it); ``adv_weight``; once the
        generator term is on, every ``loss_adv.grad_norm_interval``
        iterations, ``adv_grad_norm_enc`` and ``vis_grad_norm_enc``, the
        L2 norms of the generator term's and of the VIS losses' gradients
        at D's encoder maps.
        """
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
            real, fake = discriminator_logits(self.discriminator, adv)
        disc_loss, disc_log = self.parse_losses(
            self.loss_adv.discriminator_loss(real, fake))
        disc_log = dict(
            loss_disc=disc_log.pop('loss'),
            **disc_log,
            **self.loss_adv.discriminator_stats(real, fake))
        samples = data['data_samples']
        vis_loss, vis_log = self.parse_losses(losses)
        if not check_losses(
                dict(vis_log, **disc_log), samples, self.nonfinite_loss,
                'discriminator update'):
            return {}
        disc_wrapper.update_params(disc_loss)
        weight = self._adv_weight()
        stats = dict(disc_log, adv_weight=vis_loss.new_tensor(weight))
        if weight == 0:
            model_wrapper.update_params(vis_loss)
            return dict(vis_log, **stats)
        discriminator = unwrap_model(self.discriminator)
        with frozen(discriminator), model_wrapper.optim_context(self):
            gen = generator_grads(discriminator, self.loss_adv, adv, weight)
        _, log_vars = self.parse_losses(dict(losses, loss_adv=gen.loss))
        if not check_losses(log_vars, samples, self.nonfinite_loss,
                            'model update'):
            return {}
        log_vars.update(stats)
        surrogate = gen.surrogate()
        if self.loss_adv.logs_grad_norms(self._iteration()):
            log_vars.update(
                adv_grad_norm_enc=grad_norm_at(surrogate, adv.feats),
                vis_grad_norm_enc=grad_norm_at(vis_loss, adv.feats))
        if self.loss_adv.clip_apart:
            self._update_after_clip(model_wrapper, vis_loss, gen)
        else:
            model_wrapper.update_params(vis_loss + surrogate)
        return log_vars

    @staticmethod
    def _update_after_clip(model_wrapper: OptimWrapper, vis_loss: Tensor,
                           gen: GeneratorGrads) -> None:
        """``OptimWrapper.update_params`` for the VIS loss, with the
        generator term's gradient added after the wrapper's grad clip
        (``AdversarialLoss.clip_apart``).

        The VIS backward keeps the graph for the second backward, from the
        fake map into the model: the price of keeping the two gradients
        apart (docs/design.md §3c). With gradient accumulation, the
        generator gradients of the micro-batches before the update are
        accumulated with the VIS ones (inside the clip).
        """
        model_wrapper.backward(
            model_wrapper.scale_loss(vis_loss), retain_graph=True)
        if model_wrapper.should_update():
            with added_before_step(model_wrapper.optimizer, gen.backward):
                model_wrapper.step()
            model_wrapper.zero_grad()
        else:
            gen.backward()

    def predict_head_outputs(self, inputs: Tensor,
                             data_samples: TrackSampleList) -> VISHeadOutputs:
        """The network step of inference: frames to the head's predictions.

        Everything after it (top-k, masks, linking of windows) reads only
        the returned :class:`VISHeadOutputs`, so another backend replaces
        this one step and shares the rest (``mmvis_msts.deploy``: the
        onnxruntime backend, and the graph the ONNX export traces).

        Args:
            inputs (Tensor): (B, T, C, H, W) preprocessed frames.
            data_samples (list[TrackDataSample]): The B clips.

        Returns:
            VISHeadOutputs: The head's forward on the clips.
        """
        head = unwrap_model(self.track_head)
        return head(self.extract_feat(inputs), data_samples)

    def predict(self,
                inputs: Tensor,
                data_samples: TrackSampleList,
                rescale: bool = True) -> TrackSampleList:
        """Segment videos, whole or window by window (D unused).

        A video runs clip-wise when the head's ``test_cfg`` says so for its
        length (:func:`.clip_windows.clip_settings`), else in one pass.

        Args:
            inputs (Tensor): (B, T, C, H, W), all frames of each video.
            data_samples (list[TrackDataSample]): B videos.
            rescale (bool): Masks at the original frame size.

        Returns:
            list[TrackDataSample]: Frames with ``pred_track_instances``
            (``masks`` (N, H, W) bool, ``bboxes``, ``scores``, ``labels``,
            ``instances_id``).
        """
        head = unwrap_model(self.track_head)
        windows = clip_settings(head.test_cfg, inputs.size(1))
        if windows is None:
            return self.predict_whole(inputs, data_samples, rescale)
        window, stride = windows
        for b, sample in enumerate(data_samples):
            clips = ((inputs[b:b + 1,
                             inds], track_sample(sample[i]
                                                 for i in inds), last)
                     for inds, last in iter_windows(
                         range(len(sample)), window, stride))
            # the frames of ``sample`` get their predictions in place
            deque(self.predict_clip_wise(clips, stride, rescale), 0)
        return [
            track_sample(sample[i] for i in range(len(sample)))
            for sample in data_samples
        ]

    def predict_whole(self,
                      inputs: Tensor,
                      data_samples: TrackSampleList,
                      rescale: bool = True) -> TrackSampleList:
        """Segment each video in one pass, whatever its length.

        Args:
            inputs (Tensor): (B, T, C, H, W), all frames of each video.
            data_samples (list[TrackDataSample]): B videos.
            rescale (bool): Masks at the original frame size.

        Returns:
            list[TrackDataSample]: As :meth:`predict`.
        """
        head = unwrap_model(self.track_head)
        video_results = head.predict_by_feat(
            self.predict_head_outputs(inputs, data_samples), data_samples,
            rescale)
        for sample, frame_results in zip(data_samples, video_results):
            for frame_id, pred in enumerate(frame_results):
                sample[frame_id].pred_track_instances = pred
        return [
            track_sample(sample[i] for i in range(len(sample)))
            for sample in data_samples
        ]

    def predict_clip_wise(self,
                          windows: Iterable[Tuple[Tensor, TrackDataSample,
                                                  bool]],
                          stride: int,
                          rescale: bool = True,
                          as_rle: bool = False) -> Iterator[DetDataSample]:
        """Segment one video window by window, yielding finished frames.

        For each window (``iter_windows``): the head's top-k candidates
        (``window_candidates``), the masks of the frames the window
        finishes (the first ``stride``, all of the last window) at the
        output size, one frame at a time, ``drop_empty`` on those frames,
        then the linker (``self.tracker``) on the masks at the output
        stride over the frames shared with the previous window. Only one
        window's features are alive at a time; the frames the next window
        shares are finished by it.

        Args:
            windows (Iterable): ``(inputs, video, is_last)`` per window:
                (1, T_w, C, H, W) preprocessed frames, their
                TrackDataSample, and whether it is the last window.
                Consecutive windows share ``T_w - stride`` frames.
            stride (int): Frames between window starts.
            rescale (bool): Masks at the original frame size.
                Defaults to True.
            as_rle (bool): Keep each frame's masks as COCO RLE
                (``masks_rle``, see ``decode_rle_masks``) instead of
                ``masks``: the results then take no memory per pixel.
                Defaults to False.

        Yields:
            DetDataSample: Each frame, in order, with
            ``pred_track_instances``: per-frame scores are the window's,
            labels the tracks' voted ones (see ``ClipLinker``).
        """
        head = unwrap_model(self.track_head)
        logit_thr = mask_logit_thr(head.test_cfg.get('mask_thr', 0.5))
        self.tracker.reset()
        num_shared = 0
        for inputs, video, is_last in windows:
            cands = head.window_candidates(
                self.predict_head_outputs(inputs, [video]))
            num_out = len(video) if is_last else stride
            masks = head.frame_masks(
                cands.mask_logits[:, :num_out],
                [video[t].metainfo for t in range(num_out)], rescale)
            keep = head.kept_tracks(masks)
            scores = cands.scores[keep]
            # (N, T_w, H_4, W_4) at the output stride, for linking
            low_res = cands.mask_logits[keep] > logit_thr
            ids = self.tracker.link(
                LinkCandidates(
                    scores=scores,
                    labels=cands.labels[keep],
                    embeds=cands.embeds[keep],
                    shared_masks=low_res[:, :num_shared],
                    next_masks=low_res[:, len(video):]
                    if is_last else low_res[:, stride:],
                    num_frames=num_out)).to(scores.device)
            labels = self.tracker.labels(ids).to(scores.device)
            for t in range(num_out):
                video[t].pred_track_instances = frame_result(
                    masks[t][keep], scores, labels, ids, as_rle)
                yield video[t]
            num_shared = len(video) - stride
