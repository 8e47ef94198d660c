from .checkpoint_hook import VISCheckpointHook
from .logger_hook import VISLoggerHook
from .resume_check import CheckpointMismatchError
from .runner import NonFiniteWeightsError, VISRunner
from .visualization_hook import VISVisualizationHook
from .visualizer import VISLocalVisualizer

__all__ = [
    'CheckpointMismatchError', 'NonFiniteWeightsError', 'VISCheckpointHook',
    'VISLocalVisualizer', 'VISLoggerHook', 'VISRunner', 'VISVisualizationHook'
]
