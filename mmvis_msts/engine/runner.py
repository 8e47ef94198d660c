"""The project's Runner: mmengine's, made to work on torch >= 2.6 and CPU,
and safe against kills and non-finite weights."""
import os.path as osp
import pickle
import zipfile
from typing import Callable, Dict, Optional, Union

import torch
import torch.nn as nn
from mmdet.registry import RUNNERS
from mmengine.dist import is_distributed, master_only
from mmengine.fileio import FileClient, LocalBackend, get_file_backend
from mmengine.model import (BaseModel, MMDistributedDataParallel,
                            is_model_wrapper)
from mmengine.optim import OptimWrapper
from mmengine.registry import MODEL_WRAPPERS
from mmengine.runner import BaseLoop, Runner, find_latest_checkpoint
from torch.utils.data import DataLoader

from mmvis_msts.utils import init_cpu_dist, resolve_dist_backend
from .atomic_files import atomic_path
from .resume_check import (CheckpointMismatchError, optimizer_mismatch,
                           resume_mismatch_message, weights_mismatch)
from .worker_lifetime import tie_workers_to_parent


class NonFiniteWeightsError(FloatingPointError):
    """The model holds NaN or infinite values; it is not saved."""


def set_sharing_strategy(strategy: str) -> None:
    """Set how tensors pass between processes (DataLoader workers).

    Args:
        strategy (str): One of
            ``torch.multiprocessing.get_all_sharing_strategies()``.

    Raises:
        ValueError: If torch has no such strategy on this platform.
    """
    known = sorted(torch.multiprocessing.get_all_sharing_strategies())
    if strategy not in known:
        raise ValueError(
            f'env_cfg.mp_cfg.sharing_strategy={strategy!r} is not a '
            f'tensor sharing strategy of torch here; choose one of {known}')
    torch.multiprocessing.set_sharing_strategy(strategy)


@RUNNERS.register_module()
class VISRunner(Runner):
    """``mmengine.runner.Runner`` with fixes for today's stack and crashes.

    1. Checkpoints load weights-only through mmengine's own path: importing
       the package registers the allow-list of what an mmengine checkpoint
       holds (:mod:`mmvis_msts.utils.safe_load`); mmengine 0.10.7 calls
       ``torch.load`` without ``weights_only``, which torch >= 2.6 treats as
       ``True`` and which would otherwise reject the message hub.
    2. ``env_cfg.dist_cfg.backend='auto'`` becomes ``'nccl'`` with CUDA and
       ``'gloo'`` without.
    3. Distributed runs work on CPU-only hosts: mmengine's ``init_dist``
       calls ``torch.cuda.set_device`` and its DDP wrapper passes
       ``device_ids=[LOCAL_RANK]``, both of which fail without CUDA.
    4. The default DDP wrapper follows from the model: one DDP per
       sub-module for models with a discriminator or their own
       ``train_step`` (:meth:`wrap_model`).
    5. Checkpoints are written atomically, and a model with NaN or
       infinite weights is never saved (:meth:`save_checkpoint`);
       ``VISCheckpointHook`` does the same for ``last_checkpoint``.
    6. DataLoader workers die with the training process
       (:meth:`build_dataloader`).
    7. Resuming from a checkpoint of another model or optimizer set-up
       raises :class:`CheckpointMismatchError`, listing what differs
       (:meth:`resume`).
    8. A resumed run without a configured seed shuffles its data with the
       seed of the run it continues (:meth:`build_train_loop`).
    9. ``env_cfg.mp_cfg.sharing_strategy`` selects how DataLoader workers
       hand tensors to this process (:meth:`setup_env`).

    All other behaviour, arguments and config keys are mmengine's. Select it
    with ``runner_type = 'mmdet.VISRunner'`` (set in
    ``configs/_base_/default_runtime.py``): the scoped name lets mmengine's
    root ``RUNNERS``, which ``tools/train.py`` and ``tools/test.py`` (this
    repo's and mmdet's) build the runner from, find it in mmdet's child
    registry.
    """

    # True while resume() runs: its load_checkpoint call must match exactly
    _resuming = False

    def setup_env(self, env_cfg: Dict) -> None:
        """Set the tensor sharing strategy, resolve the dist backend and
        start CPU process groups.

        ``mp_cfg.sharing_strategy`` (any of
        ``torch.multiprocessing.get_all_sharing_strategies()``) is set for
        the whole process before any DataLoader worker starts; workers
        started by ``fork`` (``mp_start_method='fork'``) inherit it. The
        project's configs choose ``'file_system'``: with torch's default,
        ``'file_descriptor'``, every tensor of a batch costs the main
        process a socket handshake with the worker, 40 of them for a batch
        of the main job (docs/benchmarks.md, "The DataLoader's hand-over").

        Only distributed runs read ``dist_cfg``; single-process runs accept
        any backend name on any host.

        Args:
            env_cfg (dict): ``env_cfg`` of the config; its
                ``dist_cfg.backend`` may be ``'auto'``.

        Raises:
            ValueError: If ``mp_cfg.sharing_strategy`` is not one of
                torch's.
        """
        env_cfg = dict(env_cfg)
        mp_cfg = dict(env_cfg.get('mp_cfg', {}))
        strategy = mp_cfg.pop('sharing_strategy', None)
        if strategy is not None:
            set_sharing_strategy(strategy)
        # mmengine passes mp_cfg on as keyword arguments it knows
        env_cfg['mp_cfg'] = mp_cfg
        if self.distributed:
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
           (``model.with_discriminator``) or its own ``train_step`` gets
           ``MMSeparateDistributedDataParallel``, the wrapper that calls the
           model's ``train_step`` (one DDP per sub-module: with a
           discriminator, ``train_step`` updates it and the rest with two
           optimizers; ``MSSTSVIS.train_step`` also guards against
           non-finite losses). Any other model gets mmengine's default,
           ``MMDistributedDataParallel``, whose own ``train_step`` replaces
           the model's. Without ``model_wrapper_cfg``,
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
            ValueError: If a model with a discriminator or its own
                ``train_step`` is given an ``MMDistributedDataParallel`` (or
                subclass) wrapper, which would not call that ``train_step``.
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
        own_step = with_discriminator or (isinstance(model, BaseModel)
                                          and type(model).train_step
                                          is not BaseModel.train_step)
        if model_wrapper_cfg is None:
            wrapper_cfg = dict(
                broadcast_buffers=False,
                find_unused_parameters=self.cfg.get('find_unused_parameters',
                                                    False))
        else:
            wrapper_cfg = dict(model_wrapper_cfg)
        wrapper_cfg.setdefault(
            'type', 'MMSeparateDistributedDataParallel'
            if own_step else 'MMDistributedDataParallel')
        wrapper_cls = MODEL_WRAPPERS.get(wrapper_cfg['type'])
        if wrapper_cls is None:
            raise KeyError(f"model_wrapper_cfg.type={wrapper_cfg['type']!r} "
                           'is not a registered model wrapper.')
        if own_step and issubclass(wrapper_cls, MMDistributedDataParallel):
            reason = ("it has a discriminator: that wrapper's train_step "
                      "drives one optimizer, the model's two (an "
                      'OptimWrapperDict)' if with_discriminator else
                      "that wrapper's train_step would replace the model's "
                      '(which guards against non-finite losses)')
            raise ValueError(
                f"model_wrapper_cfg.type={wrapper_cfg['type']!r} cannot train "
                f'{type(model).__name__}: {reason}. Use type='
                "'MMSeparateDistributedDataParallel' (one DDP per "
                'sub-module) or leave model_wrapper_cfg.type unset.')
        return wrapper_cfg

    def build_train_loop(self, loop: Union[BaseLoop, Dict]) -> BaseLoop:
        """mmengine's train loop; a resumed run shuffles with its old seed.

        mmengine builds the train sampler (seeded with ``self.seed``) here,
        and only in :meth:`resume`, later, takes the checkpoint's seed.
        Without ``randomness.seed`` in the config, a resumed run would then
        shuffle its data with a new random seed, and its epoch would repeat
        some clips and miss others. So a run that will resume first takes
        the seed recorded in its checkpoint (before the sampler exists);
        a configured seed stays as it is (mmengine warns if they differ).

        Args:
            loop (BaseLoop | dict): The loop or its config.

        Returns:
            BaseLoop: The loop.
        """
        if isinstance(loop, dict) and self._randomness_cfg.get('seed') is None:
            seed = self._seed_to_resume()
            if seed is not None:
                self._randomness_cfg.update(seed=seed)
                self.set_randomness(**self._randomness_cfg)
        return super().build_train_loop(loop)

    def _seed_to_resume(self) -> Optional[int]:
        """The seed of the checkpoint that ``load_or_resume`` will resume.

        Returns:
            int, optional: ``meta['seed']`` of that local checkpoint; None
            without one (or if weights-only loading refuses it, which the
            resume itself then reports).
        """
        if not self._resume:
            return None
        path = self._load_from or find_latest_checkpoint(self.work_dir)
        if path is None or not osp.isfile(path):
            return None
        try:  # mmap (torch's zip format): the tensors are not read
            checkpoint = torch.load(
                path,
                map_location='cpu',
                mmap=zipfile.is_zipfile(path),
                weights_only=True)
        except pickle.UnpicklingError:
            return None
        return checkpoint.get('meta', {}).get('seed')

    def load_checkpoint(self,
                        filename: str,
                        map_location: Union[str, Callable] = 'cpu',
                        strict: bool = False,
                        revise_keys: list = [(r'^module.', '')]) -> dict:
        """mmengine's loading, plus the resume check of :meth:`resume`.

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

        Raises:
            CheckpointMismatchError: Within :meth:`resume`, if the
                checkpoint's weights or optimizer layout differ from this
                run's; mmengine has then loaded the matching weights and
                logged the others.
        """
        checkpoint = super().load_checkpoint(
            filename,
            map_location=map_location,
            strict=strict,
            revise_keys=revise_keys)
        if self._resuming:
            model = self.model.module if is_model_wrapper(
                self.model) else self.model
            lines = weights_mismatch(
                checkpoint.get('state_dict', checkpoint), model.state_dict(),
                revise_keys)
            if 'optimizer' in checkpoint and isinstance(
                    self.optim_wrapper, OptimWrapper):
                lines += optimizer_mismatch(checkpoint['optimizer'],
                                            self.optim_wrapper)
            if lines:
                raise CheckpointMismatchError(
                    resume_mismatch_message(filename,
                                            type(model).__name__, lines))
        return checkpoint

    def resume(self,
               filename: str,
               resume_optimizer: bool = True,
               resume_param_scheduler: bool = True,
               map_location: Union[str, Callable] = 'default') -> None:
        """mmengine's resume, for checkpoints of this model only.

        Args:
            filename (str): The checkpoint to continue from.
            resume_optimizer (bool): Restore the optimizer state.
                Defaults to True.
            resume_param_scheduler (bool): Restore the schedulers.
                Defaults to True.
            map_location (str | Callable): See ``Runner.resume``.
                Defaults to ``'default'``.

        Raises:
            CheckpointMismatchError: If the checkpoint's weights (keys or
                shapes) or optimizer parameter groups differ from this
                run's; the message lists the differences.
        """
        self._resuming = True
        try:
            super().resume(filename, resume_optimizer, resume_param_scheduler,
                           map_location)
        finally:
            self._resuming = False

    @master_only
    def save_checkpoint(self,
                        out_dir: str,
                        filename: str,
                        file_client_args: Optional[dict] = None,
                        save_optimizer: bool = True,
                        save_param_scheduler: bool = True,
                        meta: Optional[dict] = None,
                        by_epoch: bool = True,
                        backend_args: Optional[dict] = None) -> None:
        """mmengine's checkpoint, refused if non-finite, written atomically.

        1. Every floating-point tensor of the model's state dict is checked
           first: a model poisoned by a NaN or infinite update is never
           saved (over a good checkpoint or at all).
        2. In a local ``out_dir`` the checkpoint goes to
           ``<filename>.tmp`` in the same folder, which is synced to disk
           and renamed over ``<filename>`` (:mod:`.atomic_files`): a kill
           at any moment leaves the previous file complete. Other storage
           backends (object stores) write an object whole or not at all and
           get mmengine's single write.

        Args:
            out_dir (str): The folder of the checkpoint.
            filename (str): Its file name.
            file_client_args (dict, optional): Deprecated by mmengine; see
                ``Runner.save_checkpoint``. Defaults to None.
            save_optimizer (bool): Save the optimizer state.
                Defaults to True.
            save_param_scheduler (bool): Save the schedulers' states.
                Defaults to True.
            meta (dict, optional): Extra ``meta`` entries. Defaults to None.
            by_epoch (bool): Count the checkpoint in epochs.
                Defaults to True.
            backend_args (dict, optional): Arguments of the storage backend.
                Defaults to None.

        Raises:
            NonFiniteWeightsError: If a weight or buffer of the model holds
                NaN or inf; nothing is written.
        """
        self._check_finite_weights(osp.join(out_dir, filename))
        args = (file_client_args, save_optimizer, save_param_scheduler, meta,
                by_epoch, backend_args)
        if file_client_args is None:
            backend = get_file_backend(out_dir, backend_args=backend_args)
        else:
            backend = FileClient.infer_client(file_client_args, out_dir).client
        if not isinstance(backend, LocalBackend):
            super().save_checkpoint(out_dir, filename, *args)
            return
        with atomic_path(osp.join(out_dir, filename)) as tmp:
            super().save_checkpoint(osp.dirname(tmp), osp.basename(tmp), *args)

    def _check_finite_weights(self, filename: str) -> None:
        """Raise :class:`NonFiniteWeightsError` for a poisoned model.

        Args:
            filename (str): The checkpoint that was about to be written.
        """
        model = self.model.module if is_model_wrapper(
            self.model) else self.model
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point() and \
                    not bool(torch.isfinite(tensor).all()):
                raise NonFiniteWeightsError(
                    f'not saving {filename}: {name} of '
                    f'{type(model).__name__} holds '
                    f'{int(torch.isnan(tensor).sum())} NaN and '
                    f'{int(torch.isinf(tensor).sum())} infinite values '
                    f'(of {tensor.numel()}). The previous checkpoints are '
                    'left as they were.')

    @staticmethod
    def build_dataloader(dataloader: Union[DataLoader, Dict],
                         seed: Optional[int] = None,
                         diff_rank_seed: bool = False) -> DataLoader:
        """mmengine's DataLoader, with workers that die with this process.

        A DataLoader built from a config gets
        :func:`.worker_lifetime.tie_workers_to_parent`: on Linux every
        worker is SIGKILLed by the kernel when the training process dies,
        even by SIGKILL, instead of lingering with its memory; mmengine's
        seeding ``worker_init_fn`` still runs in each worker. A given
        DataLoader object is returned unchanged.

        Args:
            dataloader (DataLoader | dict): A DataLoader, or its config.
            seed (int, optional): Seed of the sampler and the workers.
                Defaults to None.
            diff_rank_seed (bool): Different worker seeds per rank.
                Defaults to False.

        Returns:
            DataLoader: The loader.
        """
        data_loader = Runner.build_dataloader(
            dataloader, seed=seed, diff_rank_seed=diff_rank_seed)
        if isinstance(dataloader, dict):
            tie_workers_to_parent(data_loader)
        return data_loader
