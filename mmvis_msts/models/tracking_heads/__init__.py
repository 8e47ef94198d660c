from .dynamic_mask_head import DynamicMaskHead, MaskBranch, aligned_bilinear
from .msts_vis_head import MSSTSVISHead

__all__ = ['DynamicMaskHead', 'MaskBranch', 'aligned_bilinear', 'MSSTSVISHead']
