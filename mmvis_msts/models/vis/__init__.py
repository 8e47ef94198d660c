from .adversarial_optim_constructor import \
    VISAdversarialOptimWrapperConstructor
from .msts_vis import MSSTSVIS

__all__ = ['MSSTSVIS', 'VISAdversarialOptimWrapperConstructor']
