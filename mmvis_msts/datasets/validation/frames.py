"""Checks of the frame files of a data set, at three costs.

==========  ================================================  =============
level       what it reads, what it finds                      cost / frame
==========  ================================================  =============
'exists'    a stat: missing files                             5 us
'header'    the image header (PIL, a few KiB): also files     0.1 ms
            that are no image, sizes that differ from the
            json, grayscale and alpha frames
'decode'    every pixel (PIL): also truncated or corrupt      0.2 ms (64x96
            files                                             JPEG), 5 ms
                                                              (720p)
==========  ================================================  =============

(Measured on one core with local files in the page cache.) mmcv's
``LoadImageFromFile`` (``color_type='color'``, the default) reads grayscale
frames as 3 equal channels and drops an alpha channel, so those are
warnings. It fails on a truncated JPEG, but only when the frame is
fetched: 'decode' finds it before.
"""
import os.path as osp
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from mmengine import fileio
from mmengine.fileio.backends import BaseStorageBackend, LocalBackend
from PIL import Image

from .problems import FATAL, WARNING, EntryRef, Problem

FRAME_CHECKS = ('none', 'exists', 'header', 'decode')
_GRAY_MODES = ('1', 'L', 'I', 'I;16', 'I;16L', 'I;16B', 'F')
_ALPHA_MODES = ('LA', 'La', 'RGBA', 'RGBa', 'PA')


class FrameRef(NamedTuple):
    """A frame as the annotation file lists it.

    Attributes:
        file_name (str): Path relative to the image root.
        height (int): Height H the json gives.
        width (int): Width W the json gives.
        video_id (int): Its video.
        drop (tuple[str, int], optional): Its entry, ``('images', i)``, in
            a COCO-video dict (see :attr:`Problem.drop`). Defaults to None.
    """

    file_name: str
    height: int
    width: int
    video_id: int
    drop: Optional[EntryRef] = None


def check_frame_level(level: str) -> str:
    """Return ``level`` if it is one of :data:`FRAME_CHECKS`, else raise.

    Args:
        level (str): A frame check level.

    Returns:
        str: ``level``.
    """
    if level not in FRAME_CHECKS:
        raise ValueError(
            f'frame check must be one of {FRAME_CHECKS}, got {level!r}')
    return level


def check_frames(frames: Sequence[FrameRef],
                 img_root: Optional[str],
                 source: str,
                 level: str = 'exists',
                 backend_args: Optional[dict] = None,
                 workers: int = 1) -> List[Problem]:
    """The problems of the frame files.

    Args:
        frames (Sequence[FrameRef]): The frames (see ``frame_refs``).
        img_root (str, optional): Folder the file names are relative to
            (the dataset's ``data_prefix.img_path``); None or '' for names
            that are paths already.
        source (str): The annotation file, for the messages.
        level (str): One of :data:`FRAME_CHECKS` (see the module's table).
            Defaults to 'exists'.
        backend_args (dict, optional): mmengine file backend arguments.
            Defaults to None.
        workers (int): Threads decoding frames with ``level='decode'``
            (PIL decodes without the GIL: 720p JPEGs take 5.3 ms each on
            one core, 3.0 ms with 2 threads on 2 cores); the other levels
            run in this thread. Defaults to 1.

    Returns:
        list[Problem]: Fatal problems of missing, unreadable or wrongly
        sized frames (with the frame's ``drop``), and one warning per video
        with grayscale or alpha frames.
    """
    check_frame_level(level)
    if level == 'none':
        return []

    if not frames:
        return []

    def path(frame: FrameRef) -> str:
        return osp.join(img_root, frame.file_name) if img_root else \
            frame.file_name

    # one backend for all frames (resolving it per file costs more than a
    # stat)
    backend = fileio.get_file_backend(
        path(frames[0]), backend_args=backend_args)
    if level == 'exists':
        missing = _Seen('missing_frame', 'the file does not exist')
        seen = [
            _Seen() if backend.exists(path(f)) else missing for f in frames
        ]
    else:

        def inspect(frame: FrameRef) -> _Seen:
            return _inspect(backend, path(frame), level == 'decode')

        # PIL parses headers holding the GIL (threads only add overhead)
        # but decodes without it: threads pay off for 'decode' only
        if workers > 1 and level == 'decode':
            with ThreadPoolExecutor(workers) as pool:
                seen = list(pool.map(inspect, frames))
        else:
            seen = [inspect(f) for f in frames]

    problems = []
    # video id -> 'grayscale_frames' / 'alpha_frames' -> file names
    channels: Dict[int,
                   Dict[str,
                        List[str]]] = defaultdict(lambda: defaultdict(list))
    counts: Dict[int, int] = defaultdict(int)
    for frame, info in zip(frames, seen):
        counts[frame.video_id] += 1
        where = dict(
            video_id=frame.video_id, frame=frame.file_name, drop=frame.drop)
        if info.fault:
            problems.append(
                Problem(info.fault, FATAL, source,
                        f'{path(frame)}: {info.detail}', **where))
            continue
        if info.size and info.size != (frame.height, frame.width):
            problems.append(
                Problem(
                    'frame_size_mismatch', FATAL, source,
                    f'{path(frame)} is {info.size[0]}x{info.size[1]} (HxW),'
                    f' the json says {frame.height}x{frame.width}', **where))
        if info.channels:
            channels[frame.video_id][info.channels].append(frame.file_name)
    for video_id, kinds in channels.items():
        for kind, names in kinds.items():
            what = 'grayscale' if kind == 'grayscale_frames' else \
                'with an alpha channel'
            problems.append(
                Problem(
                    kind,
                    WARNING,
                    source,
                    f'{len(names)} of the {counts[video_id]} frames are '
                    f'{what} (the first is {names[0]!r}): '
                    "LoadImageFromFile(color_type='color') reads them as "
                    '3-channel BGR',
                    video_id=video_id))
    return problems


class _Seen(NamedTuple):
    """What reading one frame found."""

    fault: Optional[str] = None  # 'missing_frame' or 'corrupt_frame'
    detail: str = ''
    size: Optional[Tuple[int, int]] = None  # (H, W) from the file
    channels: Optional[str] = None  # 'grayscale_frames' or 'alpha_frames'


def _inspect(backend: BaseStorageBackend, path: str, decode: bool) -> _Seen:
    """Open one frame with PIL: its size and mode, and with ``decode`` its
    pixels."""
    try:
        if isinstance(backend, LocalBackend):
            local = nullcontext(path)
        else:
            local = backend.get_local_path(path)
        with local as local_path:
            with Image.open(local_path) as image:
                if decode:
                    image.load()
                mode, info = image.mode, image.info
                size = (image.height, image.width)
    except FileNotFoundError:
        return _Seen('missing_frame', 'the file does not exist')
    except (OSError, ValueError, SyntaxError) as error:
        # PIL raises UnidentifiedImageError (an OSError) for non-images,
        # OSError for truncated data, SyntaxError / ValueError for broken
        # headers
        return _Seen('corrupt_frame', f'{type(error).__name__}: {error}')
    channels = None
    if mode in _GRAY_MODES:
        channels = 'grayscale_frames'
    elif mode in _ALPHA_MODES or (mode == 'P' and 'transparency' in info):
        channels = 'alpha_frames'
    return _Seen(size=size, channels=channels)
