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
import warnings
from typing import Sequence, Tuple

import numpy as np
import onnx
import torch
from mmdet.structures import TrackDataSample
from torch import Tensor, nn

from mmvis_msts.apis import preprocess_clip
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


def clip_graph_meta(model: nn.Module, inputs: Tensor,
                    video: TrackDataSample) -> ClipGraphMeta:
    """The metadata of the graph of ``model`` for this clip.

    Args:
        model (nn.Module): A model from ``init_model``.
        inputs (Tensor): (1, T, 3, H, W) frames of :func:`example_clip`.
        video (TrackDataSample): Their clip.

    Returns:
        ClipGraphMeta: The metadata the ONNX file keeps.
    """
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
        config=str(model.cfg.filename))


def export_onnx(model: nn.Module,
                inputs: Tensor,
                video: TrackDataSample,
                out: str,
                opset: int = 17) -> ClipGraphMeta:
    """Export the network step of ``model`` for clips like ``video``.

    Uses the TorchScript-based exporter (``dynamo=False``): it traces the
    head's Python control flow (per-frame metainfo, level loops) into a
    static graph, the deformable attention through its pure-PyTorch
    reference (``GridSample``).

    Args:
        model (nn.Module): A model from ``init_model``.
        inputs (Tensor): (1, T, 3, H, W) frames of :func:`example_clip`.
        video (TrackDataSample): Their clip.
        out (str): Path of the ONNX file.
        opset (int): ONNX opset, at least 16. Defaults to 17.

    Returns:
        ClipGraphMeta: What the file was exported for (also stored in its
        ``metadata_props`` under ``'mmvis_msts'``).
    """
    if opset < MIN_OPSET:
        raise ValueError(f'opset {opset} is too old: the deformable '
                         f'attention exports as GridSample, opset >= '
                         f'{MIN_OPSET}')
    meta = clip_graph_meta(model, inputs, video)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    # without grad, nn.MultiheadAttention runs a fused kernel that has no
    # ONNX symbol; its unfused path exports
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with warnings.catch_warnings():
            # the tracer warns wherever metainfo or a shape becomes a
            # constant: the graph is static in T, H and W by design
            warnings.simplefilter('ignore', torch.jit.TracerWarning)
            torch.onnx.export(
                ClipGraph(model, video).eval(), (inputs, ),
                out,
                input_names=['inputs'],
                output_names=meta.outputs,
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    proto = onnx.load(out)
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, meta.to_json()
    onnx.save(proto, out)
    return meta
