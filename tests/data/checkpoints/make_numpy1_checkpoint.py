"""Write ``numpy1_runner.pth``: a Runner checkpoint saved under numpy 1.x.

numpy < 2 pickles its arrays and scalars as ``numpy.core.multiarray.*``
(numpy 2: ``numpy._core.multiarray.*``); tests/test_utils/test_safe_load.py
loads this file to check that spelling. It is a real mmengine Runner
checkpoint (a toy model, 2 iterations, a validation), plus what a hook may
add: ``meta['numpy_values']`` holds an array of ``[0, 1, 2]``, an empty
array, a 0-d array of 1 and a scalar 1 of every fixed-width numeric dtype,
and ``log_scalars['test/empty']`` an empty HistoryBuffer. Long double types
are left out: their width depends on the platform.

Regenerate (the repo's torch and mmengine, numpy 1.26 in front)::

    pip install --target /tmp/numpy1 --no-deps numpy==1.26.4
    PYTHONPATH=/tmp/numpy1 .venv/bin/python \\
        tests/data/checkpoints/make_numpy1_checkpoint.py
"""
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.registry import MODELS
from mmengine.runner import Runner

DTYPES = ('bool', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16',
          'uint32', 'uint64', 'float16', 'float32', 'float64', 'complex64',
          'complex128')
OUT = Path(__file__).with_name('numpy1_runner.pth')


@MODELS.register_module()
class Numpy1ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, targets=None, mode='tensor'):
        pred = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=((pred - targets)**2).mean())
        return [dict(pred=p) for p in pred]


class ToyDataset(torch.utils.data.Dataset):

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return dict(
            inputs=torch.tensor([float(i), 1.0]),
            targets=torch.tensor([2.0 * i]))


def numpy_values(name: str) -> dict:
    """An array [0, 1, 2], an empty array, a 0-d array and a scalar."""
    return dict(
        arange=np.arange(3).astype(name),
        empty=np.zeros(0, name),
        zero_d=np.array(1, name),
        scalar=np.dtype(name).type(1))


class NumpyValuesHook(Hook):
    """Adds the numpy edge cases to the checkpoint being saved."""

    def before_save_checkpoint(self, runner, checkpoint):
        checkpoint['meta']['numpy_version'] = np.__version__
        checkpoint['meta']['numpy_values'] = {
            name: numpy_values(name)
            for name in DTYPES
        }
        checkpoint['message_hub']['log_scalars']['test/empty'] = \
            HistoryBuffer()


def main() -> None:
    assert np.__version__.startswith('1.'), np.__version__
    loader = dict(
        dataset=ToyDataset(),
        sampler=dict(type='DefaultSampler', shuffle=False),
        batch_size=2,
        num_workers=0,
        collate_fn=dict(type='default_collate'))
    with tempfile.TemporaryDirectory() as work_dir:
        runner = Runner(
            model=dict(type='Numpy1ToyModel'),
            work_dir=work_dir,
            train_dataloader=loader,
            train_cfg=dict(by_epoch=False, max_iters=2),
            optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
            param_scheduler=dict(
                type='MultiStepLR', by_epoch=False, milestones=[1]),
            default_hooks=dict(
                checkpoint=dict(
                    type='CheckpointHook', interval=2, by_epoch=False)),
            custom_hooks=[NumpyValuesHook()],
            randomness=dict(seed=0),
            experiment_name='numpy1_runner')
        runner.train()
        shutil.copyfile(Path(work_dir) / 'iter_2.pth', OUT)
    print(f'wrote {OUT} (numpy {np.__version__})')


if __name__ == '__main__':
    main()
