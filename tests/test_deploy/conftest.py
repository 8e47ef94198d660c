"""Tiny-config ONNX exports shared by the deployment tests.

Each export traces the tiny config with random weights (seed 1) for clips of
a few 64x96 frames; a session-scoped cache exports each clip length once.
The test modules skip themselves without onnx and onnxruntime.
"""
from typing import Callable, Dict, Tuple

import pytest
import torch
# the helpers beside this file (pytest puts the folder on sys.path)
from deploy_fixtures import H, W, build_model


@pytest.fixture(scope='session')
def model() -> torch.nn.Module:
    """The PyTorch reference: the tiny config, random weights (seed 1)."""
    return build_model()


@pytest.fixture(scope='session')
def onnx_file(model, tmp_path_factory) -> Callable[..., str]:
    """``onnx_file(T, dynamic=False)``: the model exported for clips of T
    64x96 frames (``dynamic``: traced with T, for any number of frames)."""
    from mmvis_msts.deploy import example_clip, export_onnx
    root = tmp_path_factory.mktemp('onnx')
    files: Dict[Tuple[int, bool], str] = {}

    def get(num_frames: int, dynamic: bool = False) -> str:
        key = (num_frames, dynamic)
        if key not in files:
            name = f'tiny_t{num_frames}{"_dynamic" if dynamic else ""}.onnx'
            path = str(root / name)
            inputs, video = example_clip(model, num_frames, (H, W))
            with torch.no_grad():
                export_onnx(model, inputs, video, path, dynamic_frames=dynamic)
            files[key] = path
        return files[key]

    return get
