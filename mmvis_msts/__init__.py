"""mmvis-msts: MS-STS VIS as an MMDetection plugin.

Importing the package registers every component in mmdet's registries. The
method, its data flow and every deviation from SeqFormer are described in
docs/design.md.

Notation: the dimension letters of every docstring and shape comment.

    ====  ==============================================================
    B     clips (videos) in a batch
    T     frames per clip; per-frame work folds them into the batch, B*T
    Q     instance queries
    K     classes (no background)
    N     instances (GT or predicted) of a clip or a frame
    L     feature levels; Ld decoder layers
    S     tokens of one frame over all levels, flattened (sum H_l * W_l)
    Lq    queries of one attention call (S in the encoder, Q in the decoder)
    M     attention heads; Dh channels per head
    P     sampling points per level and head
    C     channels (C_m: mask features)
    H, W  height and width; H_l, W_l of level l; H_s, W_s at stride s
    ====  ==============================================================

Strides of the masks: the mask features are at ``mask_feat_stride`` (8
input pixels per pixel), the predicted masks at ``mask_out_stride`` (4).
"""
from . import apis  # noqa: F401
from . import datasets  # noqa: F401
from . import engine  # noqa: F401
from . import evaluation  # noqa: F401
from . import models  # noqa: F401
from . import ops  # noqa: F401
from . import utils  # noqa: F401  (weights-only checkpoint loading)
from .version import __version__

__all__ = ['__version__']
