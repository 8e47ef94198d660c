"""mmvis-msts: MS-STS VIS as an MMDetection plugin.

Importing the package registers every component in mmdet's registries.

Dimension letters used in docstrings across the package:
    B clips in a batch, T frames per clip, Q instance queries, L feature
    levels, P sampling points, M attention heads, C (or D) channels,
    H and W heights and widths, N flattened tokens.
"""
from .version import __version__
from . import ops  # noqa: F401
from . import models  # noqa: F401
from . import datasets  # noqa: F401
from . import evaluation  # noqa: F401
from . import engine  # noqa: F401

__all__ = ['__version__']
