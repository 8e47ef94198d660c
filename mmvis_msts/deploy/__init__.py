"""Deployment: ONNX export of the network step and an onnxruntime backend.

Needs ``onnx`` and ``onnxruntime`` (``requirements/tests.txt``); the rest of
the package does not import this module. See docs/deployment.md.
"""
from .compare import Comparison, compare_networks
from .export import ClipGraph, example_clip, export_onnx
from .head_io import ClipGraphMeta, graph_outputs
from .ort_backend import ORTClipNetwork, init_ort_model, load_session

__all__ = [
    'ClipGraph', 'ClipGraphMeta', 'Comparison', 'ORTClipNetwork',
    'compare_networks', 'example_clip', 'export_onnx', 'graph_outputs',
    'init_ort_model', 'load_session'
]
