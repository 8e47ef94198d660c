"""``torch.compile`` for a VIS model: the modules it calls as modules.

Used by ``tools/video_demo.py --compile``, ``tools/test.py --compile`` and
the ``_compile`` models of ``tools/analysis_tools/benchmark_vis.py``
(docs/benchmarks.md, "torch.compile").
"""
from typing import List, Optional

import torch.nn as nn

from mmvis_msts.models.utils import unwrap_model

#: The parts :func:`compile_model` compiles, where a model has them: the
#: modules the models call as modules (a head's ``predict`` and ``loss`` are
#: methods, so the head itself is not one). MS-STS VIS and SeqFormer have the
#: first five, mmdet's Mask2Former-VIS the backbone and the last two. Dynamo
#: splits a graph where it cannot trace (data-dependent Python, host reads of
#: tensors) and runs those pieces eagerly; the deformable-attention kernels
#: are custom ops it traces (``mmvis_msts.ops``).
COMPILED_PARTS = ('backbone', 'neck', 'track_head.encoder',
                  'track_head.decoder', 'track_head.mask_head',
                  'track_head.pixel_decoder', 'track_head.transformer_decoder')


def compile_model(model: nn.Module,
                  backend: str = 'inductor',
                  mode: Optional[str] = None) -> List[str]:
    """``torch.compile`` the model's :data:`COMPILED_PARTS` in place.

    ``nn.Module.compile`` keeps each module, its parameters and their names
    (``torch.compile(module)`` would wrap it), so checkpoints, optimiser
    wrappers and the rest of the model see the same objects. The first call
    of each part, and each call with a new input shape, compiles: minutes
    at R-50 size on a CPU (docs/benchmarks.md).

    Args:
        model (nn.Module): The model, maybe in a model wrapper (DDP, or
            mmengine's wrappers around each child); its parts are changed
            in place, inside their wrappers.
        backend (str): ``torch.compile`` backend. Defaults to 'inductor'.
        mode (str, optional): ``torch.compile`` mode, e.g.
            ``'max-autotune'``. Defaults to None (torch's default).

    Returns:
        list[str]: The parts compiled, e.g. ``['backbone', 'neck', ...]``.
    """
    compiled = []
    for path in COMPILED_PARTS:
        part = model
        for attr in path.split('.'):
            part = None if part is None else getattr(
                unwrap_model(part), attr, None)
        if isinstance(part, nn.Module):
            part.compile(backend=backend, mode=mode)
            compiled.append(path)
    return compiled
