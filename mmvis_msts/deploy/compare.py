"""Numerical comparison of an exported graph with the PyTorch model.

Used by ``tools/deployment/export_onnx.py --check`` and
``tools/deployment/benchmark_onnx.py``; the tests compare on their own.

Shapes use the package notation (``mmvis_msts``): T frames, N top-k pairs,
H_4, W_4 the size of the predicted masks.
"""
from dataclasses import dataclass
from typing import Callable, Dict

import torch
from mmdet.structures import TrackDataSample, TrackSampleList
from torch import Tensor, nn

from mmvis_msts.models.tracking_heads.vis_records import VISHeadOutputs
from .head_io import graph_outputs

Network = Callable[[Tensor, TrackSampleList], VISHeadOutputs]


@dataclass
class Comparison:
    """Largest absolute differences of a backend to the PyTorch model.

    Attributes:
        max_abs_diff (dict[str, float]): Per graph output, and
            ``mask_logits`` for the (N, T, H_4, W_4) logits of the top-k
            pairs, the largest absolute difference.
        max_abs_ref (dict[str, float]): The same keys: the largest
            absolute value of PyTorch's, the magnitude the difference is
            measured against.
        same_top_k (bool): Whether both select the same (query, label)
            pairs in the same order.
    """

    max_abs_diff: Dict[str, float]
    max_abs_ref: Dict[str, float]
    same_top_k: bool

    def summary(self) -> str:
        """One line per tensor, then the top-k verdict."""
        lines = [
            f'{name}: max |diff| {diff:.3g} (max |PyTorch| '
            f'{self.max_abs_ref[name]:.3g})'
            for name, diff in self.max_abs_diff.items()
        ]
        lines.append(f'same top-k (query, label) pairs: {self.same_top_k}')
        return '\n'.join(lines)


def _candidates(model: nn.Module, head_outs: VISHeadOutputs) -> dict:
    """Graph outputs plus the top-k mask logits, and the candidates."""
    cands = model.track_head.window_candidates(head_outs)
    tensors = dict(graph_outputs(head_outs), mask_logits=cands.mask_logits)
    return dict(tensors=tensors, cands=cands)


def compare_networks(model: nn.Module, network: Network, inputs: Tensor,
                     video: TrackDataSample) -> Comparison:
    """Run PyTorch and ``network`` on one clip and compare their outputs.

    Args:
        model (nn.Module): The PyTorch model (the reference).
        network (Callable): Another ``predict_head_outputs``, e.g. an
            ``ORTClipNetwork``.
        inputs (Tensor): (1, T, 3, H, W) preprocessed frames.
        video (TrackDataSample): Their clip.

    Returns:
        Comparison: Differences on the last decoder layer's outputs and
        the top-k mask logits (each backend's own top-k).
    """
    with torch.no_grad():
        ref = _candidates(model, model.predict_head_outputs(inputs, [video]))
        got = _candidates(model, network(inputs, [video]))
    same_top_k = bool(
        torch.equal(ref['cands'].query_inds, got['cands'].query_inds)
        and torch.equal(ref['cands'].labels, got['cands'].labels))
    diffs, refs = {}, {}
    for name, want in ref['tensors'].items():
        diffs[name] = (got['tensors'][name] - want).abs().max().item()
        refs[name] = want.abs().max().item()
    return Comparison(
        max_abs_diff=diffs, max_abs_ref=refs, same_top_k=same_top_k)
