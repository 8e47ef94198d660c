"""ONNX export of the network step of inference for one clip.

The exported graph is ``MSSTSVIS.predict_head_outputs`` (backbone, neck,
encoder with MS-STS, decoder with temporal attention, class/box/mask
branches) on one clip of preprocessed frames; its outputs are the tensor
fields of ``VISHeadOutputs`` (:mod:`.head_io`). Top-k, the dynamic mask
convs of the selected queries, mask upsampling and thresholding stay in
the package's post-processing, which PyTorch and onnxruntime share. The
discriminator is training-only and not part of the graph.

Shapes use the package notation (``mmvis_msts``): T frames, H, W pixels.
"""
import contextlib
import warnings
from typing import Dict, Iterator, Optional, Sequence, Tuple

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from mmdet.structures import TrackDataSample
from torch import Tensor, nn

from mmvis_msts.apis import preprocess_clip
from mmvis_msts.models.tracking_heads.vis_records import VISHeadOutputs
from .head_io import META_KEY, ClipGraphMeta, graph_outputs, static_fields

#: ``GridSample``, which the deformable attention exports as, needs 16
MIN_OPSET = 16


def example_clip(model: nn.Module,
                 num_frames: int,
                 shape: Sequence[int],
                 seed: int = 0) -> Tuple[Tensor, TrackDataSample]:
    """A clip of random frames, preprocessed as a video of that size is.

    Args:
        model (nn.Module): A model from ``init_model``.
        num_frames (int): T.
        shape (Sequence[int]): (H, W) of the video frames, before the
            config's test pipeline resizes them.
        seed (int): Seed of the pixels. Defaults to 0.

    Returns:
        tuple[Tensor, TrackDataSample]: (1, T, 3, H', W') input of
        ``model.predict_head_outputs`` and its clip.
    """
    if num_frames < 1 or len(shape) != 2 or min(shape) < 1:
        raise ValueError('need at least one frame and a positive (H, W), '
                         f'got {num_frames} frames of {tuple(shape)}')
    rng = np.random.default_rng(seed)
    frames = [
        rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
        for _ in range(num_frames)
    ]
    return preprocess_clip(model, frames)


class ClipGraph(nn.Module):
    """``predict_head_outputs`` of one clip layout as a tensor function.

    The clip's metainfo (frame count, sizes) is fixed at construction,
    which is what tracing needs: the graph maps the frames to the tensors
    of :func:`.head_io.graph_outputs`, in field order.

    Args:
        model (nn.Module): An ``MSSTSVIS`` in eval mode.
        video (TrackDataSample): The clip whose layout is exported.
    """

    def __init__(self, model: nn.Module, video: TrackDataSample) -> None:
        super().__init__()
        self.model = model
        self.video = video

    def forward(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        """(1, T, 3, H, W) frames -> the graph outputs."""
        head_outs = self.model.predict_head_outputs(inputs, [self.video])
        return tuple(graph_outputs(head_outs).values())


def clip_graph_meta(model: nn.Module,
                    inputs: Tensor,
                    video: TrackDataSample,
                    head_outs: Optional[VISHeadOutputs] = None,
                    dynamic_frames: bool = False) -> ClipGraphMeta:
    """The metadata of the graph of ``model`` for this clip.

    Args:
        model (nn.Module): A model from ``init_model``.
        inputs (Tensor): (1, T, 3, H, W) frames of :func:`example_clip`.
        video (TrackDataSample): Their clip.
        head_outs (VISHeadOutputs, optional): PyTorch's predictions on
            them, if already computed. Defaults to None (computed here).
        dynamic_frames (bool): Whether the graph takes any T. Defaults to
            False.

    Returns:
        ClipGraphMeta: The metadata the ONNX file keeps.
    """
    if head_outs is None:
        with torch.no_grad():
            head_outs = model.predict_head_outputs(inputs, [video])
    int_fields, dropped = static_fields(head_outs)
    first = video[0].metainfo
    classes = model.dataset_meta.get('classes')
    return ClipGraphMeta(
        num_frames=inputs.size(1),
        input_shape=list(inputs.shape[-2:]),
        img_shape=list(first['img_shape'][:2]),
        ori_shape=list(first['ori_shape'][:2]),
        num_classes=model.num_classes,
        classes=None if classes is None else list(classes),
        outputs=list(graph_outputs(head_outs)),
        int_fields=int_fields,
        dropped_fields=dropped,
        config=str(model.cfg.filename),
        dynamic_frames=dynamic_frames)


def _separate_in_projections(q: Tensor,
                             k: Tensor,
                             v: Tensor,
                             w: Tensor,
                             b: Optional[Tensor] = None) -> Tuple[Tensor, ...]:
    """``F._in_projection_packed`` as three plain projections.

    The same weights and results; torch's version projects a
    self-attention's q, k, v in one matmul and splits it with
    ``unflatten(-1, (3, E))`` (k, v with ``(2, E)``). The TorchScript
    exporter's shape inference cannot follow that reshape and types its
    output with the traced shape, T included; the exporter then folds the
    sizes read from it into constants, and a graph with a dynamic T fails
    at any other T (``Reshape`` of ``nn.MultiheadAttention``).
    """
    w_q, w_k, w_v = w.chunk(3)
    b_q, b_k, b_v = (None, ) * 3 if b is None else b.chunk(3)
    return F.linear(q, w_q, b_q), F.linear(k, w_k, b_k), F.linear(v, w_v, b_v)


@contextlib.contextmanager
def _attention_for_export(dynamic_frames: bool) -> Iterator[None]:
    """``nn.MultiheadAttention`` on its exportable path while tracing.

    Its fused fast path (taken without grad in eval mode) has no ONNX
    symbol, so it is off; with ``dynamic_frames`` the in-projections are
    also :func:`_separate_in_projections`. Both are restored after.
    """
    fastpath = torch.backends.mha.get_fastpath_enabled()
    packed = F._in_projection_packed
    torch.backends.mha.set_fastpath_enabled(False)
    if dynamic_frames:
        F._in_projection_packed = _separate_in_projections
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        F._in_projection_packed = packed


def frame_axes(model: nn.Module, meta: ClipGraphMeta,
               outputs: Dict[str, Tensor]) -> Dict[str, int]:
    """The axis of T in each graph output that has one.

    Found by running PyTorch on a clip one frame longer than the traced
    one: the axis whose size changes is T's.

    Args:
        model (nn.Module): The model exported.
        meta (ClipGraphMeta): Its metadata for the traced clip.
        outputs (dict[str, Tensor]): Its graph outputs on that clip.

    Returns:
        dict[str, int]: Output name -> axis of T.
    """
    inputs, video = example_clip(model, meta.num_frames + 1, meta.ori_shape)
    with torch.no_grad():
        longer = graph_outputs(model.predict_head_outputs(inputs, [video]))
    axes = {}
    for name, out in outputs.items():
        changed = [
            axis
            for axis, (a, b) in enumerate(zip(out.shape, longer[name].shape))
            if a != b
        ]
        if changed:
            axes[name] = changed[0]
    return axes


def export_onnx(model: nn.Module,
                inputs: Tensor,
                video: TrackDataSample,
                out: str,
                opset: int = 17,
                dynamic_frames: bool = False) -> ClipGraphMeta:
    """Export the network step of ``model`` for clips like ``video``.

    Uses the TorchScript-based exporter (``dynamo=False``): it traces the
    head's Python control flow (per-frame metainfo, level loops) into a
    graph, the deformable attention through its pure-PyTorch reference
    (``GridSample``).

    Args:
        model (nn.Module): A model from ``init_model``.
        inputs (Tensor): (1, T, 3, H, W) frames of :func:`example_clip`.
        video (TrackDataSample): Their clip.
        out (str): Path of the ONNX file.
        opset (int): ONNX opset, at least 16. Defaults to 17.
        dynamic_frames (bool): Give the graph a dynamic T axis (input
            axis 1, named ``frames``), so that it takes clips of any
            number of frames of this frame size; the clip is traced with
            T frames. Defaults to False (static T).

    Returns:
        ClipGraphMeta: What the file was exported for (also stored in its
        ``metadata_props`` under ``'mmvis_msts'``).
    """
    if opset < MIN_OPSET:
        raise ValueError(f'opset {opset} is too old: the deformable '
                         f'attention exports as GridSample, opset >= '
                         f'{MIN_OPSET}')
    with torch.no_grad():
        head_outs = model.predict_head_outputs(inputs, [video])
    meta = clip_graph_meta(model, inputs, video, head_outs, dynamic_frames)
    dynamic_axes = None
    if dynamic_frames:
        axes = frame_axes(model, meta, graph_outputs(head_outs))
        dynamic_axes = dict(
            inputs={1: 'frames'},
            **{
                name: {
                    axis: 'frames'
                }
                for name, axis in axes.items()
            })
    with _attention_for_export(dynamic_frames), warnings.catch_warnings():
        # the tracer warns wherever metainfo or a shape becomes a
        # constant: the frame size is static by design, and T too unless
        # dynamic_frames
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        torch.onnx.export(
            ClipGraph(model, video).eval(), (inputs, ),
            out,
            input_names=['inputs'],
            output_names=meta.outputs,
            opset_version=opset,
            dynamic_axes=dynamic_axes,
            do_constant_folding=True,
            dynamo=False)
    proto = onnx.load(out)
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, meta.to_json()
    onnx.save(proto, out)
    return meta
