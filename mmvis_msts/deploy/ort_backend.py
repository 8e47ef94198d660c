"""onnxruntime backend of ``inference_video``.

:class:`ORTClipNetwork` runs the exported graph (:mod:`.export`) in
place of ``MSSTSVIS.predict_head_outputs``; :func:`init_ort_model` puts it
into a model built from the config, so the preprocessing (the config's
test pipeline and data preprocessor), the windows of the clip-wise mode,
their linking (``ClipLinker``) and the post-processing (top-k, masks per
frame, RLE) are the package's, the same code as with PyTorch.

Examples:
    >>> from mmvis_msts.apis import inference_video
    >>> from mmvis_msts.deploy import init_ort_model
    >>> model = init_ort_model(
    ...     'configs/msts_vis/msts-vis_r18-tiny_1xb4-2k_synthetic.py',
    ...     'work_dirs/onnx/tiny_t5.onnx')
    >>> result = inference_video(model, 'clip_of_5_frames.mp4')

Shapes use the package notation (``mmvis_msts``): B clips, T frames.
"""
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import onnxruntime as ort
import torch
from mmdet.structures import TrackSampleList
from mmengine.config import Config
from torch import Tensor, nn

from mmvis_msts.apis import init_model
from mmvis_msts.models.tracking_heads.vis_records import VISHeadOutputs
from .head_io import META_KEY, ClipGraphMeta

OnnxFiles = Union[str, Sequence[str]]


def load_session(
    path: str,
    num_threads: Optional[int] = None
) -> Tuple[ort.InferenceSession, ClipGraphMeta]:
    """An onnxruntime CPU session of an exported file, and its metadata.

    Args:
        path (str): ONNX file of ``tools/deployment/export_onnx.py``.
        num_threads (int, optional): Threads of one operator
            (``intra_op_num_threads``). Defaults to None (onnxruntime's
            choice, one per core).

    Returns:
        tuple[InferenceSession, ClipGraphMeta]: The session and what the
        file was exported for.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the file has no metadata of this package.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'ONNX file {path} does not exist')
    options = ort.SessionOptions()
    if num_threads is not None:
        options.intra_op_num_threads = num_threads
    session = ort.InferenceSession(
        path, options, providers=['CPUExecutionProvider'])
    props = session.get_modelmeta().custom_metadata_map
    if META_KEY not in props:
        raise ValueError(f'{path} has no {META_KEY!r} metadata: export it '
                         'with tools/deployment/export_onnx.py')
    return session, ClipGraphMeta.from_json(props[META_KEY])


class ORTClipNetwork:
    """``predict_head_outputs`` by onnxruntime, for one clip at a time.

    An exported graph is static in the frame size, and in T unless it was
    exported with ``--dynamic-frames``. A model serves the clip lengths of
    its files: a static file serves its own length (one for the
    whole-video mode; for the clip-wise mode one per window length that
    occurs: the window, and the last window's length if it is shorter), a
    dynamic file every length no static file serves.

    Args:
        onnx_files (str | Sequence[str]): ONNX files of
            ``tools/deployment/export_onnx.py``: at most one per clip
            length, and at most one with a dynamic T.
        num_threads (int, optional): See :func:`load_session`.

    Raises:
        ValueError: If two files are for the same clip length, or two
            have a dynamic T.
    """

    def __init__(self,
                 onnx_files: OnnxFiles,
                 num_threads: Optional[int] = None) -> None:
        files = [onnx_files] if isinstance(onnx_files, str) else onnx_files
        Graph = Tuple[str, ort.InferenceSession, ClipGraphMeta]
        self.graphs: Dict[int, Graph] = {}
        self.dynamic: Optional[Graph] = None
        for path in files:
            session, meta = load_session(path, num_threads)
            if meta.dynamic_frames:
                if self.dynamic is not None:
                    raise ValueError(
                        f'{path} and {self.dynamic[0]} both take clips of '
                        'any number of frames')
                self.dynamic = (path, session, meta)
                continue
            if meta.num_frames in self.graphs:
                raise ValueError(
                    f'{path} and {self.graphs[meta.num_frames][0]} are '
                    f'both for clips of {meta.num_frames} frames')
            self.graphs[meta.num_frames] = (path, session, meta)

    @property
    def metas(self) -> List[Tuple[str, ClipGraphMeta]]:
        """(file, metadata) of every graph."""
        graphs = list(self.graphs.values())
        if self.dynamic is not None:
            graphs.append(self.dynamic)
        return [(path, meta) for path, _, meta in graphs]

    def check_model(self, model: nn.Module) -> None:
        """Raise if a graph was exported for another number of classes.

        Args:
            model (nn.Module): The model whose post-processing reads the
                graphs' outputs.

        Raises:
            ValueError: Naming the file and both numbers.
        """
        for path, meta in self.metas:
            if meta.num_classes != model.num_classes:
                raise ValueError(
                    f'{path} was exported for {meta.num_classes} classes '
                    f'(from {meta.config}) but the model of '
                    f'{model.cfg.filename} has num_classes='
                    f'{model.num_classes}')

    def _graph_for(
        self, inputs: Tensor, data_samples: TrackSampleList
    ) -> Tuple[str, ort.InferenceSession, ClipGraphMeta]:
        """The graph that serves this clip, or a ValueError why none."""
        if len(data_samples) != 1:
            raise ValueError('the onnxruntime backend runs one clip at a '
                             f'time, got {len(data_samples)}')
        num_frames = inputs.size(1)
        if num_frames in self.graphs:
            path, session, meta = self.graphs[num_frames]
        elif self.dynamic is not None:
            path, session, meta = self.dynamic
        else:
            have = ', '.join(f'{path} ({meta.num_frames} frames)'
                             for path, meta in self.metas)
            raise ValueError(
                f'no ONNX file for clips of {num_frames} frames (have '
                f'{have}): export one with tools/deployment/export_onnx.py '
                f'--frames {num_frames}, or one for any number of frames '
                'with --dynamic-frames')
        img_shape = list(data_samples[0][0].img_shape[:2])
        if list(inputs.shape[-2:]) != meta.input_shape or \
                img_shape != meta.img_shape:
            ori_h, ori_w = data_samples[0][0].ori_shape[:2]
            raise ValueError(
                f'{path} was exported for frames of {meta.ori_shape[0]}x'
                f'{meta.ori_shape[1]} (HxW; model input {meta.img_shape} '
                f'padded to {meta.input_shape}) but these frames are '
                f'{ori_h}x{ori_w} (input {img_shape} padded to '
                f'{list(inputs.shape[-2:])}): export with --shape {ori_h} '
                f'{ori_w}')
        return path, session, meta

    def __call__(self, inputs: Tensor,
                 data_samples: TrackSampleList) -> VISHeadOutputs:
        """Run the graph that serves this clip length.

        Args:
            inputs (Tensor): (1, T, 3, H, W) preprocessed frames.
            data_samples (list[TrackDataSample]): The clip.

        Returns:
            VISHeadOutputs: Ld = 1 (the last layer), on ``inputs``' device.

        Raises:
            ValueError: If no graph serves the clip (more than one clip, a
                length without file, another frame size).
        """
        _, session, meta = self._graph_for(inputs, data_samples)
        arrays = session.run(meta.outputs,
                             {'inputs': inputs.detach().cpu().numpy()})
        return meta.head_outputs({
            name:
            torch.from_numpy(array).to(inputs.device)
            for name, array in zip(meta.outputs, arrays)
        })


def init_ort_model(config: Union[str, Config],
                   onnx_files: OnnxFiles,
                   num_threads: Optional[int] = None,
                   cfg_options: Optional[dict] = None) -> nn.Module:
    """A model for ``inference_video`` whose network runs in onnxruntime.

    The model is built from the config (``init_model``, no checkpoint: the
    weights are the graph's) for its preprocessing and post-processing;
    its ``predict_head_outputs`` is an :class:`ORTClipNetwork`. The class
    names come from the ONNX file when it was exported with a checkpoint
    that names them.

    Args:
        config (str | Config): The config the files were exported from.
        onnx_files (str | Sequence[str]): See :class:`ORTClipNetwork`.
        num_threads (int, optional): See :func:`load_session`.
        cfg_options (dict, optional): Config overrides, e.g. the clip-wise
            ``test_cfg``. Defaults to None.

    Returns:
        nn.Module: The model, on the CPU, in eval mode.

    Raises:
        FileNotFoundError: If an ONNX file does not exist.
        ValueError: If a file is not an export of this package, or was
            exported for another number of classes.
    """
    network = ORTClipNetwork(onnx_files, num_threads)
    model = init_model(config, cfg_options=cfg_options)
    network.check_model(model)
    classes = {
        tuple(meta.classes)
        for _, meta in network.metas if meta.classes is not None
    }
    if len(classes) == 1:
        model.dataset_meta = dict(classes=classes.pop())
    # the one swapped step; every other method is the model's own
    model.predict_head_outputs = network
    return model
