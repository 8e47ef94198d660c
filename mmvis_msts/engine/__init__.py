from .logger_hook import VISLoggerHook
from .runner import VISRunner, build_runner
from .visualization_hook import VISVisualizationHook
from .visualizer import VISLocalVisualizer

__all__ = [
    'VISLocalVisualizer', 'VISLoggerHook', 'VISRunner', 'VISVisualizationHook',
    'build_runner'
]
