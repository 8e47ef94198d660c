from .bf16_optim_wrapper import BF16OptimWrapper
from .checkpoint_hook import VISCheckpointHook
from .cpu_threads_hook import CPUThreadsHook
from .logger_hook import VISLoggerHook
from .resume_check import CheckpointMismatchError
from .runner import NonFiniteWeightsError, VISRunner
from .visualization_hook import VISVisualizationHook
from .visualizer import VISLocalVisualizer

__all__ = [
    'BF16OptimWrapper', 'CheckpointMismatchError', 'CPUThreadsHook',
    'NonFiniteWeightsError', 'VISCheckpointHook', 'VISLocalVisualizer',
    'VISLoggerHook', 'VISRunner', 'VISVisualizationHook'
]
