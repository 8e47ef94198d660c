from .logger_hook import VISLoggerHook
from .runner import VISRunner
from .visualization_hook import VISVisualizationHook
from .visualizer import VISLocalVisualizer

__all__ = [
    'VISLocalVisualizer', 'VISLoggerHook', 'VISRunner', 'VISVisualizationHook'
]
