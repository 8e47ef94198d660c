from .dynamic_conv_mask_head import (DynamicConvMaskHead, MaskBranch,
                                     aligned_bilinear)
from .msts_vis_head import MSSTSVISHead

__all__ = [
    'DynamicConvMaskHead', 'MaskBranch', 'aligned_bilinear', 'MSSTSVISHead'
]
