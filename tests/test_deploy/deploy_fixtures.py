"""The deployment tests' config, frame size and model builder.

Test modules import these from here, not from ``conftest``: with several
``conftest.py`` files in the suite, ``import conftest`` gets whichever one
pytest loaded last (``pytest tests/test_deploy tests/test_datasets`` failed
to collect this way).
"""
import contextlib
from typing import Iterator

import pytest
import torch
from mmengine.runner import set_random_seed

from mmvis_msts.apis import init_model

CONFIG = 'configs/msts_vis/msts-vis_r18-tiny_1xb4-2k_synthetic.py'
H, W = 64, 96


@contextlib.contextmanager
def dirty_memory() -> Iterator[None]:
    """Make every floating ``torch.empty`` tensor start as NaN.

    Memory the allocator hands out again holds what earlier code left
    there: in a fresh process ``torch.empty`` usually gives zeros, after
    other tests any bit pattern, NaN and inf included. A model built in
    here has NaN in every weight its constructor leaves uninitialised, so
    the tests see such a weight whatever ran before them.
    """
    empty = torch.empty

    def nan_empty(*args, **kwargs) -> torch.Tensor:
        out = empty(*args, **kwargs)
        if out.is_floating_point():
            out.fill_(float('nan'))
        return out

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch, 'empty', nan_empty)
        yield


def build_model(**cfg_options) -> torch.nn.Module:
    """The tiny config with random weights (seed 1), built on NaN-filled
    memory (:func:`dirty_memory`), as ``init_model`` without a checkpoint
    builds it. Random queries can have near-identical instance embeddings,
    and then the clip-wise linking of two runs may pair them either way
    although their network outputs agree to 1e-5: with seed 0 and the
    backbone of 2026-12-02 two tracks swapped ids between PyTorch and
    onnxruntime at equal scores. Seed 1 has no such tie."""
    with dirty_memory():
        set_random_seed(1)
        return init_model(CONFIG, cfg_options=cfg_options or None)
