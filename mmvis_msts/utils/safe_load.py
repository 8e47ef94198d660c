"""Weights-only loading of mmengine checkpoints on torch >= 2.6.

torch 2.6 made ``torch.load`` default to ``weights_only=True``, which only
rebuilds tensors, containers and allow-listed globals. mmengine 0.10.7 calls
``torch.load`` without the argument, and a Runner checkpoint holds more than
tensors. Saving a Runner checkpoint (2 iterations, validation, MultiStepLR;
a toy model and the MS-STS / Mask2FormerVideo VIS models give the same set),
running ``torch.serialization.get_unsafe_globals_in_checkpoint`` on it and
then loading it gives exactly the globals allowed here:

``mmengine.logging.history_buffer.HistoryBuffer``
    ``message_hub.log_scalars`` maps every logged scalar (``train/loss``,
    ``train/lr``, ``train/time``, ...) to a HistoryBuffer; resuming restores
    them so smoothed logs and ETAs continue.
``builtins.getattr``
    ``HistoryBuffer.__getstate__`` stores its statistics methods, which
    pickle as ``getattr(HistoryBuffer, 'min')`` (also max, current, mean).
    The real ``getattr`` would let a checkpoint reach anything
    (``getattr(getattr, '__self__')`` is the builtins module), so the name is
    bound to :func:`_history_buffer_statistic`, which resolves only those
    four lookups and refuses every other.
``numpy.ndarray``, ``numpy._core.multiarray._reconstruct``, ``numpy.dtype``
    the HistoryBuffer histories are numpy arrays (pickled through
    ``_reconstruct`` plus a dtype).
``numpy._core.multiarray.scalar``
    numpy scalars in ``message_hub.runtime_info`` (``eta`` is a
    ``np.float64``) and in metrics logged by evaluators.
the dtype classes of numeric numpy types (``numpy.dtypes.Float64DType``...)
    rebuilding a dtype ends with a BUILD on the dtype instance, which torch
    only permits for allow-listed types (``get_unsafe_globals_in_checkpoint``
    does not report these, loading does). The probed checkpoints hold
    float64; the other bool/int/uint/float widths are what numpy scalars
    logged by hooks or metrics can carry. Object, string and void dtypes,
    which can embed arbitrary Python objects, stay forbidden.

numpy < 2 writes ``numpy.core.multiarray`` for the last two functions; both
spellings are accepted so checkpoints saved under numpy 1.x load too.

Everything else (model and optimizer tensors, ``OrderedDict``, the
``Counter`` of MultiStepLR milestones, builtins) is allowed by torch
already. The allowance is scoped: :func:`mmengine_checkpoint_globals` adds
the globals only for the ``with`` block, so the process-wide weights-only
policy stays torch's default. ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` and
``weights_only=False`` are never used.
"""
import pickle
from contextlib import contextmanager
from typing import Callable, Iterator, List, Tuple, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

try:  # numpy >= 2
    from numpy._core import multiarray as _np_multiarray
except ImportError:  # numpy 1.x
    from numpy.core import multiarray as _np_multiarray

# The statistics HistoryBuffer registers for itself (_set_default_statistics)
HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


def _history_buffer_statistic(owner: type, name: str) -> Callable:
    """Stand-in for ``builtins.getattr`` while unpickling a checkpoint.

    Args:
        owner (type): Must be ``HistoryBuffer``.
        name (str): One of :data:`HISTORY_BUFFER_STATISTICS`.

    Returns:
        Callable: The statistics method ``HistoryBuffer.<name>``.

    Raises:
        pickle.UnpicklingError: For any other lookup.
    """
    if owner is HistoryBuffer and name in HISTORY_BUFFER_STATISTICS:
        return getattr(owner, name)
    raise pickle.UnpicklingError(
        f'checkpoint asks for getattr({owner!r}, {name!r}); weights-only '
        'loading of mmengine checkpoints only resolves HistoryBuffer '
        f'statistics {HISTORY_BUFFER_STATISTICS}.')


SafeGlobal = Union[Callable, Tuple[Callable, str]]

# One dtype class per numeric type, e.g. numpy.dtypes.Float64DType
NUMERIC_DTYPE_CLASSES = tuple(
    type(np.dtype(code)) for code in ('b1', 'i1', 'i2', 'i4', 'i8', 'u1', 'u2',
                                      'u4', 'u8', 'f2', 'f4', 'f8'))

MMENGINE_CHECKPOINT_GLOBALS: Tuple[SafeGlobal, ...] = (
    HistoryBuffer,
    (_history_buffer_statistic, 'builtins.getattr'),
    np.ndarray,
    np.dtype,
    (_np_multiarray._reconstruct, 'numpy._core.multiarray._reconstruct'),
    (_np_multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
    (_np_multiarray.scalar, 'numpy._core.multiarray.scalar'),
    (_np_multiarray.scalar, 'numpy.core.multiarray.scalar'),
) + NUMERIC_DTYPE_CLASSES


@contextmanager
def mmengine_checkpoint_globals() -> Iterator[None]:
    """Allow the globals of mmengine checkpoints within the ``with`` block.

    Globals that were already allowed before stay allowed afterwards; only
    the ones added here are removed again.

    Examples:
        >>> with mmengine_checkpoint_globals():
        ...     ckpt = torch.load('work_dirs/x/iter_2000.pth')
    """
    allowed = torch.serialization.get_safe_globals()
    added: List[SafeGlobal] = [
        g for g in MMENGINE_CHECKPOINT_GLOBALS if g not in allowed
    ]
    with torch.serialization.safe_globals(added):
        yield


def load_checkpoint_weights_only(
        filename: str,
        map_location: Union[str, Callable, torch.device] = 'cpu') -> dict:
    """``torch.load`` an mmengine checkpoint with ``weights_only=True``.

    Args:
        filename (str): Path of a local checkpoint file.
        map_location (str | Callable | torch.device): See ``torch.load``.
            Defaults to ``'cpu'``.

    Returns:
        dict: The checkpoint (``meta``, ``state_dict``, ``message_hub``,
        ``optimizer``, ``param_schedulers`` for a Runner checkpoint).
    """
    with mmengine_checkpoint_globals():
        return torch.load(
            filename, map_location=map_location, weights_only=True)
