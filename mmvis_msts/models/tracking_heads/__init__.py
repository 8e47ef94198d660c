from .base_vis_head import BaseVISHead
from .dynamic_conv_mask_head import (DynamicConvMaskHead, MaskBranch,
                                     aligned_bilinear)
from .mssts_vis_head import MSSTSVISHead
from .vis_records import (ClipAssignment, ForegroundMaps, VISHeadOutputs,
                          VISTargets, WindowCandidates)
from .vis_transformer import VISTransformerMixin

__all__ = [
    'BaseVISHead', 'ClipAssignment', 'DynamicConvMaskHead', 'ForegroundMaps',
    'MaskBranch', 'MSSTSVISHead', 'VISHeadOutputs', 'VISTargets',
    'VISTransformerMixin', 'WindowCandidates', 'aligned_bilinear'
]
