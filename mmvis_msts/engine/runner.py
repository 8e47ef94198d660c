"""The project's Runner: mmengine's, made to work on torch >= 2.6 and CPU."""
from typing import Callable, Dict, Optional, Union

import torch
import torch.nn as nn
from mmdet.registry import RUNNERS
from mmengine.config import Config, ConfigDict
from mmengine.dist import is_distributed
from mmengine.runner import Runner

from mmvis_msts.utils import (init_cpu_dist, mmengine_checkpoint_globals,
                              resolve_dist_backend)


@RUNNERS.register_module()
class VISRunner(Runner):
    """``mmengine.runner.Runner`` with three fixes for today's stack.

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

    All other behaviour, arguments and config keys are mmengine's; select it
    with ``runner_type = 'VISRunner'`` (set in
    ``configs/_base_/default_runtime.py``).
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
        """Wrap the model; on CPU, DDP gets ``device_ids=None``.

        Args:
            model_wrapper_cfg (dict, optional): ``model_wrapper_cfg`` of the
                config.
            model (nn.Module): The model to wrap.

        Returns:
            nn.Module: The (wrapped) model.
        """
        if self.distributed and not torch.cuda.is_available():
            # DDP over CPU parameters requires device_ids=None; mmengine
            # passes [LOCAL_RANK] unless the config names the argument.
            model_wrapper_cfg = dict(
                model_wrapper_cfg or dict(
                    type='MMDistributedDataParallel',
                    broadcast_buffers=False,
                    find_unused_parameters=self.cfg.get(
                        'find_unused_parameters', False)))
            model_wrapper_cfg.setdefault('device_ids', None)
        return super().wrap_model(model_wrapper_cfg, model)

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


def build_runner(cfg: Union[Config, ConfigDict]) -> Runner:
    """Build the runner of ``cfg``: ``cfg.runner_type``, else VISRunner.

    The class is looked up in mmdet's ``RUNNERS`` (and its parents) by name,
    independent of the default scope left behind by earlier runners.

    Args:
        cfg (Config): A full training/testing config; ``runner_type`` is
            set to ``'VISRunner'`` when missing.

    Returns:
        Runner: The runner, built with ``from_cfg``.
    """
    cfg.setdefault('runner_type', 'VISRunner')
    runner_cls = RUNNERS.get(cfg.runner_type)
    if runner_cls is None:
        raise KeyError(f'runner_type={cfg.runner_type!r} is not registered '
                       "in mmdet's RUNNERS (or mmengine's).")
    return runner_cls.from_cfg(cfg)
