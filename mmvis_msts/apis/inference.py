"""Run a VIS model on a user's video: model building, frame reading, predict.

``init_model`` builds a model from a config (and checkpoint), and
``inference_video`` segments and tracks the instances of one video with it,
frames preprocessed by the config's own test pipeline. Shapes use the
package notation (``mmvis_msts``): T frames, C channels, H, W pixels.

Examples:
    >>> from mmvis_msts.apis import inference_video, init_model
    >>> from mmvis_msts.evaluation import ytvis_results
    >>> model = init_model('configs/msts_vis/'
    ...                    'msts-vis_r18-tiny_1xb4-2k_synthetic.py')
    >>> result = inference_video(model, 'my_video.mp4')
    >>> result[0].pred_track_instances.masks.shape  # (N, H, W) bool
    >>> tracks = ytvis_results(result)  # YouTube-VIS result dicts
    >>> # a long video window by window: masks kept as RLE
    >>> result = inference_video(model, 'long.mp4', window=20, stride=10)
    >>> masks = with_dense_masks(result[0]).pred_track_instances.masks
    >>> tracks = ytvis_results(result)  # reads the RLEs as they are
"""
import copy
import os
import os.path as osp
import re
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
import torch
from mmcv.transforms import Compose
from mmdet.registry import DATASETS, MODELS
from mmdet.structures import DetDataSample, TrackDataSample
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from torch import nn
from tqdm import tqdm

from mmvis_msts.models.tracking_heads.vis_postprocess import decode_rle_masks
from mmvis_msts.models.utils import track_sample
from mmvis_msts.models.vis.clip_windows import clip_settings, iter_windows

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


class VideoInputError(ValueError):
    """A video, frame folder or frame list that cannot be segmented."""


def _natural_key(name: str) -> list:
    """Sort key that orders ``frame_2`` before ``frame_10``."""
    return [
        int(s) if s.isdigit() else s.lower() for s in re.split(r'(\d+)', name)
    ]


class VideoFrames:
    """The frames of a video file, a frame folder or a list of arrays.

    Frames are read one at a time while iterating (a video file through
    mmcv's ``VideoReader``, i.e. OpenCV), so a long video is never decoded
    up front. Every iteration checks that the frames share one size.

    Args:
        video (str | PathLike | Sequence[np.ndarray]): Path of a video file
            OpenCV can decode (.mp4, .avi, ...), a folder of frame images
            (read in natural sort order: ``2.jpg`` before ``10.jpg``), or T
            frames (H, W, 3) uint8 in BGR order, as ``mmcv.imread`` and
            OpenCV give them.

    Attributes:
        name (str): What the frames are, for messages: the path, or
            ``'frame list'``.
        fps (float, optional): Frame rate of a video file, None otherwise.

    Raises:
        FileNotFoundError: If the path does not exist.
        VideoInputError: If OpenCV cannot open the video, the video or
            folder holds no frame, or a frame list is empty or holds
            something other than (H, W, 3) arrays.
    """

    def __init__(self, video: Union[str, os.PathLike,
                                    Sequence[np.ndarray]]) -> None:
        self.fps: Optional[float] = None
        self._reader: Optional[mmcv.VideoReader] = None
        self._files: List[str] = []
        self._arrays: Sequence[np.ndarray] = []
        if isinstance(video, (str, os.PathLike)):
            self.name = os.fspath(video)
            self._open_path(self.name)
        else:
            self.name = 'frame list'
            self._arrays = video
            if len(video) == 0:
                raise VideoInputError('the frame list is empty')
            for i, frame in enumerate(video):
                if not isinstance(frame, np.ndarray) or frame.ndim != 3 \
                        or frame.shape[2] != 3:
                    raise VideoInputError(
                        f'frame {i} of the frame list is not an (H, W, 3) '
                        f'array: got {type(frame).__name__} of shape '
                        f'{getattr(frame, "shape", None)}')

    def _open_path(self, path: str) -> None:
        if not osp.exists(path):
            raise FileNotFoundError(f'video input {path} does not exist')
        if osp.isdir(path):
            self._files = sorted((osp.join(path, f) for f in os.listdir(path)
                                  if f.lower().endswith(IMAGE_EXTENSIONS)),
                                 key=lambda p: _natural_key(osp.basename(p)))
            if not self._files:
                raise VideoInputError(
                    f'frame folder {path} holds no image (looked for '
                    f'{", ".join(IMAGE_EXTENSIONS)})')
            return
        self._reader = mmcv.VideoReader(path)
        if not self._reader.opened:
            raise VideoInputError(
                f'OpenCV cannot decode the video {path}: not a video file, '
                'a truncated file, or a codec this OpenCV build lacks')
        if self._reader.frame_cnt <= 0:
            raise VideoInputError(f'video {path} has no frame')
        self.fps = self._reader.fps

    def __len__(self) -> int:
        """Number of frames (a video file's as its header states it)."""
        if self._reader is not None:
            return self._reader.frame_cnt
        return len(self._files) if self._files else len(self._arrays)

    def _raw_frames(self) -> Iterator[np.ndarray]:
        if self._reader is not None:
            yield from self._reader
        elif self._files:
            for path in self._files:
                frame = mmcv.imread(path)
                if frame is None:
                    raise VideoInputError(f'cannot decode the frame {path}')
                yield frame
        else:
            yield from self._arrays

    def frame_name(self, index: int) -> str:
        """Name of frame ``index`` for messages (its file for a folder)."""
        if self._files:
            return self._files[index]
        return f'frame {index} of {self.name}'

    def __iter__(self) -> Iterator[np.ndarray]:
        """Yield the frames, (H, W, 3) BGR, checking they share one size.

        Raises:
            VideoInputError: If a frame's size differs from the first's, or
                a video file yields no frame at all.
        """
        size = None
        count = 0
        for count, frame in enumerate(self._raw_frames(), 1):
            if size is None:
                size = frame.shape[:2]
            elif frame.shape[:2] != size:
                raise VideoInputError(
                    f'{self.frame_name(count - 1)} is {frame.shape[1]}x'
                    f'{frame.shape[0]} (WxH) but the first frame of '
                    f'{self.name} is {size[1]}x{size[0]}: all frames of a '
                    'video must have one size')
            yield frame
        if count == 0:
            raise VideoInputError(f'video {self.name} has no frame OpenCV '
                                  'can decode')


VideoInput = Union[str, os.PathLike, Sequence[np.ndarray], VideoFrames]


def _config_classes(cfg: Config) -> Optional[tuple]:
    """Class names of the config's test dataset, without building it."""
    dataset_cfg = cfg.test_dataloader.dataset
    metainfo = dataset_cfg.get('metainfo') or {}
    if 'classes' in metainfo:
        return tuple(metainfo['classes'])
    dataset_cls = DATASETS.get(dataset_cfg.type)
    if dataset_cls is None:
        return None
    if 'dataset_version' in dataset_cfg and hasattr(dataset_cls,
                                                    'set_dataset_classes'):
        # what building the dataset does first (YouTubeVISDataset)
        dataset_cls.set_dataset_classes(dataset_cfg.dataset_version)
    return tuple(dataset_cls.METAINFO.get('classes', ())) or None


def init_model(config: Union[str, Config],
               checkpoint: Optional[str] = None,
               device: str = 'cpu',
               cfg_options: Optional[dict] = None) -> nn.Module:
    """Build a VIS model from a config and load its weights.

    Args:
        config (str | Config): Config file path or loaded config.
        checkpoint (str, optional): Checkpoint path, loaded weights-only
            (``mmvis_msts.utils.safe_load``). None keeps the weights
            randomly initialised. Defaults to None.
        device (str): Device of the model, e.g. ``'cpu'``, ``'cuda:0'``.
            Defaults to ``'cpu'``.
        cfg_options (dict, optional): Config overrides, as ``--cfg-options``
            gives them. Defaults to None.

    Returns:
        nn.Module: The model in eval mode, with ``cfg`` (the config) and
        ``dataset_meta`` (``classes`` from the checkpoint's
        ``meta['dataset_meta']``, else from the config's test dataset).

    Raises:
        FileNotFoundError: If the checkpoint does not exist.
        ValueError: If the checkpoint's classes are not as many as the
            model's ``num_classes``.
    """
    if isinstance(config, str):
        config = Config.fromfile(config)
    elif not isinstance(config, Config):
        raise TypeError('config must be a file name or a Config, got '
                        f'{type(config).__name__}')
    if cfg_options:
        config.merge_from_dict(cfg_options)
    init_default_scope(config.get('default_scope', 'mmdet'))
    model = MODELS.build(config.model)
    classes = _config_classes(config)
    if checkpoint is not None:
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(f'checkpoint {checkpoint} does not exist')
        ckpt = load_checkpoint(model, checkpoint, map_location='cpu')
        ckpt_meta = ckpt.get('meta', {}).get('dataset_meta', {})
        ckpt_classes = ckpt_meta.get('classes', ckpt_meta.get('CLASSES'))
        if ckpt_classes is not None:
            classes = tuple(ckpt_classes)
    num_classes = model.track_head.num_classes
    if classes is not None and len(classes) != num_classes:
        source = checkpoint if checkpoint is not None else config.filename
        raise ValueError(
            f'{source} names {len(classes)} classes ({", ".join(classes)}) '
            f'but the model of {config.filename} has num_classes='
            f'{num_classes}: use the config the checkpoint was trained with')
    model.dataset_meta = dict(classes=classes)
    model.cfg = config
    model.to(device)
    model.eval()
    return model


def build_inference_pipeline(cfg: Config) -> Compose:
    """The config's test pipeline for frames given as arrays.

    Every ``LoadImageFromFile`` becomes mmdet's ``LoadImageFromNDArray``
    and annotation loading (``Load*Annotations``) is dropped; every other
    step (``Resize``, ``PackTrackInputs``, ...) is the config's own.

    Args:
        cfg (Config): A config with ``test_dataloader.dataset.pipeline``.

    Returns:
        Compose: Maps ``dict(img=[(H, W, 3) array], img_id=[i], ...)`` to
        ``dict(inputs=(1, 3, H', W') uint8, data_samples=TrackDataSample)``.
    """

    def adapt(steps: list) -> list:
        adapted = []
        for step in steps:
            kind = step['type'].split('.')[-1]
            if kind.endswith('Annotations'):
                continue
            step = copy.deepcopy(step)
            if kind == 'LoadImageFromFile':
                step['type'] = 'mmdet.LoadImageFromNDArray'
            if 'transforms' in step:
                step['transforms'] = adapt(step['transforms'])
            adapted.append(step)
        return adapted

    pipeline = adapt(cfg.test_dataloader.dataset.pipeline)
    return Compose(pipeline)


def _packed_frames(
    frames: VideoFrames,
    pipeline: Compose,
    video_id: int,
    bar: Optional[tqdm] = None
) -> Iterator[Tuple[torch.Tensor, DetDataSample]]:
    """Frames through the test pipeline, one at a time.

    Yields:
        tuple[Tensor, DetDataSample]: (1, 3, H', W') uint8 input and the
        frame's sample (``video_length`` from the header count).
    """
    for t, image in enumerate(frames):
        packed = pipeline(
            dict(img=[image], img_id=[t], frame_id=[t], video_id=[video_id]))
        sample = packed['data_samples'][0]
        sample.set_metainfo(
            dict(video_length=len(frames), ori_video_length=len(frames)))
        if bar is not None:
            bar.update()
        yield packed['inputs'], sample


def _preprocess(
    model: nn.Module, items: Sequence[Tuple[torch.Tensor, DetDataSample]]
) -> Tuple[torch.Tensor, TrackDataSample]:
    """Packed frames of one clip through the model's data preprocessor.

    Returns:
        tuple[Tensor, TrackDataSample]: (1, T, 3, H, W) normalised, padded
        frames and their clip (``batch_input_shape`` set).
    """
    inputs, samples = zip(*items)
    # T frames of (1, 3, H', W') -> one clip (T, 3, H', W')
    data = model.data_preprocessor(
        dict(inputs=[torch.cat(inputs)], data_samples=[track_sample(samples)]),
        False)
    return data['inputs'], data['data_samples'][0]


def preprocess_clip(model: nn.Module,
                    video: VideoInput,
                    video_id: int = 0) -> Tuple[torch.Tensor, TrackDataSample]:
    """All frames of a short clip as ``model.predict_head_outputs`` takes
    them: the config's test pipeline, then the model's data preprocessor,
    as the clip-wise mode of :func:`inference_video` prepares a window.

    Args:
        model (nn.Module): A model from :func:`init_model`.
        video (str | PathLike | Sequence[np.ndarray] | VideoFrames): The
            clip (see :class:`VideoFrames`); all its frames are held.
        video_id (int): ``video_id`` of the frames. Defaults to 0.

    Returns:
        tuple[Tensor, TrackDataSample]: (1, T, 3, H, W) frames and their
        clip.
    """
    frames = video if isinstance(video, VideoFrames) else VideoFrames(video)
    pipeline = build_inference_pipeline(model.cfg)
    return _preprocess(model, list(_packed_frames(frames, pipeline, video_id)))


def inference_video(model: nn.Module,
                    video: VideoInput,
                    video_id: int = 0,
                    progress: bool = False,
                    window: Optional[int] = None,
                    stride: Optional[int] = None,
                    bf16: bool = False) -> TrackDataSample:
    """Segment and track the instances of one video.

    The frames go through the config's test pipeline one at a time (see
    :func:`build_inference_pipeline`). The model then runs either on all T
    frames in one pass, as ``tools/test.py`` runs it, or, when the head's
    ``test_cfg`` (or ``window``) asks for the clip-wise mode for T frames
    (``clip_settings``), window by window while the frames are read: only
    one window of frames and features is alive, and the masks are kept as
    COCO RLE, so the memory does not grow with T.

    Args:
        model (nn.Module): A model from :func:`init_model`, or from
            ``mmvis_msts.deploy.init_ort_model`` to run the network in
            onnxruntime (docs/deployment.md).
        video (str | PathLike | Sequence[np.ndarray] | VideoFrames): A
            video file, a frame folder or a list of (H, W, 3) BGR frames
            (see :class:`VideoFrames`).
        video_id (int): ``video_id`` of the frames' metainfo, and of the
            YouTube-VIS results. Defaults to 0.
        progress (bool): Show a progress bar (frames/s) while reading and
            preprocessing. Defaults to False.
        window (int, optional): Frames per window; overrides the config's
            ``clip_window`` (videos longer than one window then run
            clip-wise, unless ``clip_mode_min_frames`` says otherwise);
            0 runs the video in one pass, whatever its length.
            Defaults to None (the config's settings).
        stride (int, optional): Frames between window starts, with
            ``window`` only. Defaults to ``window // 2``.
        bf16 (bool): Run the network in bfloat16 autocast (a CPU with
            AVX512-BF16 or AMX, or a GPU); the post-processing and the
            results stay float32 (docs/inference.md, "bfloat16").
            Defaults to False.

    Returns:
        TrackDataSample: T frames; frame t carries ``pred_track_instances``
        with ``masks`` (N, H, W) bool at the original size (clip-wise:
        ``masks_rle``, N COCO RLE dicts, see :func:`with_dense_masks`),
        ``bboxes`` (N, 4) xyxy, ``scores`` (N,), ``labels`` (N,) 0-based
        and ``instances_id`` (N,), and the metainfo ``img_id`` =
        ``frame_id`` = t, ``video_id``, ``ori_shape``, ``img_shape``,
        ``video_length`` T.

    Raises:
        ValueError: If ``stride`` comes without ``window``.
    """
    frames = video if isinstance(video, VideoFrames) else VideoFrames(video)
    test_cfg = dict(model.track_head.test_cfg)
    if window == 0:
        if stride is not None:
            raise ValueError('stride needs a window (window=0: whole video)')
        test_cfg.update(clip_window=None)
    elif window is not None:
        test_cfg.update(clip_window=window, clip_stride=stride)
    elif stride is not None:
        raise ValueError('stride needs a window')
    windows = clip_settings(test_cfg, len(frames))
    pipeline = build_inference_pipeline(model.cfg)
    bar = tqdm(
        total=len(frames),
        unit='frame',
        desc='read + segment' if windows else 'read + preprocess',
        disable=not progress)
    packed = _packed_frames(frames, pipeline, video_id, bar)
    device_type = model.data_preprocessor.device.type
    with bar, torch.no_grad(), torch.autocast(
            device_type, dtype=torch.bfloat16, enabled=bf16):
        if windows is None:
            items = list(packed)
            for _, sample in items:
                sample.set_metainfo(
                    dict(video_length=len(items), ori_video_length=len(items)))
            inputs, video = _preprocess(model, items)
            # one pass, even where the config's test_cfg would window it
            return model.predict_whole(inputs, [video])[0]
        size, step = windows

        def preprocessed_windows():
            for items, last in iter_windows(packed, size, step):
                yield (*_preprocess(model, items), last)

        return track_sample(
            model.predict_clip_wise(
                preprocessed_windows(), step, rescale=True, as_rle=True))


def with_dense_masks(frame: DetDataSample) -> DetDataSample:
    """A frame whose masks are kept as RLE, with ``masks`` decoded.

    Args:
        frame (DetDataSample): A frame of :func:`inference_video`.

    Returns:
        DetDataSample: ``frame`` itself if it has ``masks``, else a copy
        whose ``pred_track_instances`` carry ``masks`` (N, H, W) bool at
        ``ori_shape`` instead of ``masks_rle``.
    """
    pred = frame.pred_track_instances
    if 'masks_rle' not in pred:
        return frame
    dense = pred.clone()
    dense.masks = decode_rle_masks(pred, tuple(frame.ori_shape[:2]))
    del dense.masks_rle
    decoded = frame.clone()
    decoded.pred_track_instances = dense
    return decoded
