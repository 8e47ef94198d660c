"""Tiny-config ONNX exports shared by the deployment tests.

Each export traces the tiny config with random weights (seed 0) for clips of
a few 64x96 frames; a session-scoped cache exports each clip length once.
The test modules skip themselves without onnx and onnxruntime.
"""
from typing import Callable, Dict

import pytest
import torch
from mmengine.runner import set_random_seed

from mmvis_msts.apis import init_model

CONFIG = 'configs/msts_vis/msts-vis_r18-tiny_1xb4-2k_synthetic.py'
H, W = 64, 96


@pytest.fixture(scope='session')
def model() -> torch.nn.Module:
    """The PyTorch reference: the tiny config, random weights (seed 0)."""
    set_random_seed(0)
    return init_model(CONFIG)


@pytest.fixture(scope='session')
def onnx_file(model, tmp_path_factory) -> Callable[[int], str]:
    """``onnx_file(T)``: the model exported for clips of T 64x96 frames."""
    from mmvis_msts.deploy import example_clip, export_onnx
    root = tmp_path_factory.mktemp('onnx')
    files: Dict[int, str] = {}

    def get(num_frames: int) -> str:
        if num_frames not in files:
            path = str(root / f'tiny_t{num_frames}.onnx')
            inputs, video = example_clip(model, num_frames, (H, W))
            with torch.no_grad():
                export_onnx(model, inputs, video, path)
            files[num_frames] = path
        return files[num_frames]

    return get
