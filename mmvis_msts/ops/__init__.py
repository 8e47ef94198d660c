"""Compiled ops of mmvis-msts and their pure-PyTorch references."""
from .ms_deform_attn import (LevelShapes, MSDeformAttn,
                             MultiScaleDeformableAttnFunction, ext_available,
                             ms_deform_attn, ms_deform_attn_pytorch)

__all__ = [
    'ms_deform_attn', 'ms_deform_attn_pytorch',
    'MultiScaleDeformableAttnFunction', 'MSDeformAttn', 'ext_available',
    'LevelShapes'
]
