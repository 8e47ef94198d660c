"""The project's Runner: mmengine's, made to work on torch >= 2.6 and CPU."""
from typing import Callable, Dict, Optional, Union

import torch
import torch.nn as nn
from mmdet.registry import RUNNERS
from mmengine.dist import is_distributed
from mmengine.model import MMDistributedDataParallel, is_model_wrapper
from mmengine.registry import MODEL_WRAPPERS
from mmengine.runner import Runner

from mmvis_msts.utils import (init_cpu_dist, mmengine_checkpoint_globals,
                              resolve_dist_backend)


@RUNNERS.register_module()
class VISRunner(Runner):
    """``mmengine.runner.Runner`` with four fixes for today's stack.

    1. Checkpoints (``load_from``, ``resume``, the test checkpoint and
       ``init_cfg`` 'Pretrained' weights) are loaded by torch's weights-only
       unpickler with the globals that
       mmengine checkpoints hold allowed for the duration of the load
       (:mod:`mmvis_msts.utils.safe_load`). mmengine 0.10.7 calls
       ``torch.load`` without ``weights_only``, which torch >= 2.6 treats as
       ``True`` and then rejects the checkpoint's message hub.
    2. ``env_cfg.dist_cfg.backend='auto'`` becomes ``'nccl'`` with CUDA and
       ``'gloo'`` without.
    3. Distributed runs work on CPU-only hosts: mmengine's ``init_dist``
       calls ``torch.cuda.set_device`` and its DDP wrapper passes
       ``device_ids=[LOCAL_RANK]``, both of which fail without CUDA.
    4. The default DDP wrapper follows from the model: one DDP per
       sub-module for models with a discriminator (:meth:`wrap_model`).

    All other behaviour, arguments and config keys are mmengine's. Select it
    with ``runner_type = 'mmdet.VISRunner'`` (set in
    ``configs/_base_/default_runtime.py``): the scoped name lets mmengine's
    root ``RUNNERS``, which ``tools/train.py`` and ``tools/test.py`` (this
    repo's and mmdet's) build the runner from, find it in mmdet's child
    registry.
    """

    def setup_env(self, env_cfg: Dict) -> None:
        """Resolve the dist backend and start CPU process groups.

        Only distributed runs read ``dist_cfg``; single-process runs accept
        any backend name on any host.

        Args:
            env_cfg (dict): ``env_cfg`` of the config; its
                ``dist_cfg.backend`` may be ``'auto'``.
        """
        if self.distributed:
            env_cfg = dict(env_cfg)
            dist_cfg = dict(env_cfg.get('dist_cfg', {}))
            dist_cfg['backend'] = resolve_dist_backend(
                dist_cfg.get('backend', 'auto'))
            env_cfg['dist_cfg'] = dist_cfg
            if not is_distributed() and not torch.cuda.is_available():
                # mmengine's init_dist would call torch.cuda.set_device.
                init_cpu_dist(self.launcher, **dist_cfg)
        super().setup_env(env_cfg)

    def wrap_model(self, model_wrapper_cfg: Optional[Dict],
                   model: nn.Module) -> nn.Module:
        """Wrap the model in the DDP wrapper that fits it.

        Distributed runs only; a single process gets mmengine's behaviour.

        1. Without ``model_wrapper_cfg.type``, a model with a discriminator
           (``model.with_discriminator``) gets
           ``MMSeparateDistributedDataParallel`` (one DDP per sub-module, as
           its ``train_step`` updates the discriminator and the rest with
           two optimizers); any other model gets mmengine's default,
           ``MMDistributedDataParallel``. Without ``model_wrapper_cfg``,
           either has mmengine's default settings
           (``broadcast_buffers=False``, the config's
           ``find_unused_parameters``).
        2. On CPU, DDP gets ``device_ids=None``: mmengine passes
           ``[LOCAL_RANK]``, which DDP over CPU parameters rejects.

        Args:
            model_wrapper_cfg (dict, optional): ``model_wrapper_cfg`` of the
                config.
            model (nn.Module): The model to wrap.

        Returns:
            nn.Module: The (wrapped) model.

        Raises:
            ValueError: If a model with a discriminator is given an
                ``MMDistributedDataParallel`` (or subclass) wrapper, whose
                ``train_step`` cannot drive two optimizers.
        """
        if not self.distributed or is_model_wrapper(model):
            return super().wrap_model(model_wrapper_cfg, model)
        wrapper_cfg = self._wrapper_cfg(model_wrapper_cfg, model)
        if not torch.cuda.is_available():
            wrapper_cfg.setdefault('device_ids', None)
        return super().wrap_model(wrapper_cfg, model)

    def _wrapper_cfg(self, model_wrapper_cfg: Optional[Dict],
                     model: nn.Module) -> Dict:
        """The wrapper config of :meth:`wrap_model`, its type checked."""
        with_discriminator = getattr(model, 'with_discriminator', False)
        if model_wrapper_cfg is None:
            wrapper_cfg = dict(
                broadcast_buffers=False,
                find_unused_parameters=self.cfg.get('find_unused_parameters',
                                                    False))
        else:
            wrapper_cfg = dict(model_wrapper_cfg)
        wrapper_cfg.setdefault(
            'type', 'MMSeparateDistributedDataParallel'
            if with_discriminator else 'MMDistributedDataParallel')
        wrapper_cls = MODEL_WRAPPERS.get(wrapper_cfg['type'])
        if wrapper_cls is None:
            raise KeyError(f"model_wrapper_cfg.type={wrapper_cfg['type']!r} "
                           'is not a registered model wrapper.')
        if with_discriminator and issubclass(wrapper_cls,
                                             MMDistributedDataParallel):
            raise ValueError(
                f"model_wrapper_cfg.type={wrapper_cfg['type']!r} cannot train "
                f'{type(model).__name__}, which has a discriminator: that '
                "wrapper's train_step drives one optimizer, the model's two "
                "(an OptimWrapperDict). Use type='MMSeparateDistributed"
                "DataParallel' (one DDP per sub-module) or leave "
                'model_wrapper_cfg.type unset.')
        return wrapper_cfg

    def _init_model_weights(self) -> None:
        """Initialise weights; ``init_cfg`` checkpoints load weights-only.

        ``init_cfg=dict(type='Pretrained', checkpoint=...)`` goes through
        mmengine's ``load_checkpoint``, which is not ``Runner.
        load_checkpoint``; published mmengine checkpoints keep a ``meta``
        that may hold numpy values.
        """
        with mmengine_checkpoint_globals():
            super()._init_model_weights()

    def load_checkpoint(self,
                        filename: str,
                        map_location: Union[str, Callable] = 'cpu',
                        strict: bool = False,
                        revise_keys: list = [(r'^module.', '')]) -> dict:
        """Load a checkpoint with weights-only unpickling.

        ``resume`` and ``load_from`` both go through this method.

        Args:
            filename (str): Local path or URL of the checkpoint.
            map_location (str | Callable): See ``torch.load``.
                Defaults to ``'cpu'``.
            strict (bool): Require matching keys. Defaults to False.
            revise_keys (list): ``(pattern, replacement)`` pairs applied to
                the state-dict keys. Defaults to stripping ``module.``.

        Returns:
            dict: The loaded checkpoint.
        """
        with mmengine_checkpoint_globals():
            return super().load_checkpoint(
                filename,
                map_location=map_location,
                strict=strict,
                revise_keys=revise_keys)
