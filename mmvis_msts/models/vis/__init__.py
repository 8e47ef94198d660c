from .adversarial_optim_constructor import \
    VISAdversarialOptimWrapperConstructor
from .mssts_vis import MSSTSVIS

__all__ = ['MSSTSVIS', 'VISAdversarialOptimWrapperConstructor']
