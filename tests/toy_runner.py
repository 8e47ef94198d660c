"""A toy regression model, data set and metric for runner tests.

Tests of the runner, its checkpoints and their loading need a real
mmengine run that takes a second, not a VIS model: ``runner_kwargs`` gives
the arguments of one (``tests/`` is on ``sys.path`` through its
``conftest.py``).
"""
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from torch.utils.data import Dataset

TOY_MODEL = 'ToyRunnerTestModel'


@MODELS.register_module(name=TOY_MODEL)
class ToyModel(BaseModel):
    """Linear regression of ``targets`` on ``inputs``."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, targets=None, mode='tensor'):
        pred = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=((pred - targets)**2).mean())
        return [dict(pred=p) for p in pred]


class ToyDataset(Dataset):
    """Four samples ``([i, 1], 2 i)``."""

    metainfo = dict(classes=('a', 'b'))

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return dict(
            inputs=torch.tensor([float(i), 1.0]),
            targets=torch.tensor([2.0 * i]))


class ToyMetric(BaseMetric):
    """Returns a numpy scalar, as numpy-based metrics do."""

    def process(self, data_batch, data_samples):
        self.results.extend(float(d['pred']) for d in data_samples)

    def compute_metrics(self, results):
        return dict(mean_pred=np.float64(np.mean(results)))


def toy_loader() -> dict:
    """The toy data in batches of 2, in order, in the main process."""
    return dict(
        dataset=ToyDataset(),
        sampler=dict(type='DefaultSampler', shuffle=False),
        batch_size=2,
        num_workers=0,
        collate_fn=dict(type='default_collate'))


def runner_kwargs(work_dir: Path, max_iters: int, **kwargs) -> dict:
    """Runner arguments: train, validate and checkpoint every 2 iterations.

    Args:
        work_dir (Path): The run's work dir.
        max_iters (int): Training iterations.
        **kwargs: Further or replacing runner arguments.

    Returns:
        dict: Arguments of ``Runner`` / ``VISRunner``.
    """
    args = dict(
        model=ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=toy_loader(),
        val_dataloader=toy_loader(),
        val_evaluator=[ToyMetric()],
        val_cfg=dict(),
        train_cfg=dict(by_epoch=False, max_iters=max_iters, val_interval=2),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
        param_scheduler=dict(
            type='MultiStepLR', by_epoch=False, milestones=[1, 3]),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        env_cfg=dict(dist_cfg=dict(backend='auto')),
        randomness=dict(seed=0))
    args.update(kwargs)
    return args
