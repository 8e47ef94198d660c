"""Windows of the clip-wise mode: settings and the sliding window.

Shapes use the package notation (``mmvis_msts``): T frames.
"""
from itertools import islice
from typing import Iterable, Iterator, List, Optional, Tuple, TypeVar

Item = TypeVar('Item')


def clip_settings(test_cfg: dict,
                  num_frames: int) -> Optional[Tuple[int, int]]:
    """Whether a video of T frames runs clip-wise, and with which windows.

    Args:
        test_cfg (dict): The head's ``test_cfg``: ``clip_window`` (frames
            per window; None, the default, keeps the whole-video mode for
            every video), ``clip_stride`` (frames between window starts,
            ``1 <= stride <= window``; default ``clip_window // 2``, i.e.
            half the window shared) and ``clip_mode_min_frames`` (videos of
            at least this many frames run clip-wise; default
            ``clip_window + 1``, those that do not fit in one window).
        num_frames (int): T.

    Returns:
        tuple[int, int] | None: (window, stride), or None for the
        whole-video mode.
    """
    window = test_cfg.get('clip_window')
    if window is None:
        return None
    stride = test_cfg.get('clip_stride') or max(window // 2, 1)
    if not 1 <= stride <= window:
        raise ValueError('test_cfg needs 1 <= clip_stride <= clip_window, '
                         f'got clip_stride={stride}, clip_window={window}')
    min_frames = test_cfg.get('clip_mode_min_frames') or window + 1
    return (window, stride) if num_frames >= min_frames else None


def iter_windows(items: Iterable[Item], window: int,
                 stride: int) -> Iterator[Tuple[List[Item], bool]]:
    """Slide a window over items read one at a time.

    Windows start every ``stride`` items and hold ``window`` items, the
    last one what is left (at least ``window - stride + 1`` items); at most
    ``window + 1`` items are held at once.

    Args:
        items (Iterable): The frames (or their indices), in order.
        window (int): Items per window.
        stride (int): Items between window starts, ``1 <= stride <=
            window``.

    Yields:
        tuple[list, bool]: The window's items, and whether it is the last.

    Examples:
        >>> [(w, last) for w, last in iter_windows(range(5), 3, 2)]
        [([0, 1, 2], False), ([2, 3, 4], True)]
    """
    if not 1 <= stride <= window:
        raise ValueError(f'need 1 <= stride <= window, got stride={stride}, '
                         f'window={window}')
    it = iter(items)
    buf = list(islice(it, window))
    while buf:
        peeked = list(islice(it, 1))
        if not peeked:
            yield buf, True
            return
        yield buf, False
        buf = buf[stride:] + peeked
        buf += list(islice(it, window - len(buf)))
