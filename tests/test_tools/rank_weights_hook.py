"""A hook for the distributed tool tests: each rank saves its own weights.

Imported by a test config through ``custom_imports`` (this folder on
``PYTHONPATH``); the test then compares the ranks' files.
"""
import os.path as osp

import torch
from mmdet.registry import HOOKS
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner


@HOOKS.register_module()
class RankWeightsHook(Hook):
    """Save the model's state dict per rank before and after training.

    Writes ``<work_dir>/rank<R>_before.pth`` and ``rank<R>_after.pth``.
    """

    def before_train(self, runner: Runner) -> None:
        self._save(runner, 'before')

    def after_train(self, runner: Runner) -> None:
        self._save(runner, 'after')

    @staticmethod
    def _save(runner: Runner, stage: str) -> None:
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        torch.save(model.state_dict(),
                   osp.join(runner.work_dir, f'rank{get_rank()}_{stage}.pth'))
