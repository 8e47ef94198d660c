"""Weights-only loading of mmengine checkpoints on torch >= 2.6.

torch 2.6 made ``torch.load`` default to ``weights_only=True``: its
unpickler rebuilds tensors, plain containers and builtins, and any other
global only if it is allow-listed. mmengine 0.10.7 calls ``torch.load``
without the argument, and a Runner checkpoint holds more than tensors.
Importing this module (``import mmvis_msts`` does, and every config does
through ``custom_imports``) makes two process-wide registrations:

1. ``torch.serialization.add_safe_globals(MMENGINE_CHECKPOINT_GLOBALS)``, so
   plain ``torch.load(path)`` and everything built on it (mmengine's
   ``load_checkpoint``, ``CheckpointLoader``, its Runner, mmdet's
   ``init_track_model``) rebuild what an mmengine checkpoint can hold;
2. :func:`load_from_local` as mmengine's ``CheckpointLoader`` scheme for
   local paths, so those loads pass ``weights_only=True`` explicitly (the
   ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` environment variable only overrides
   an unset argument) and a refused file raises
   :class:`UnsafeCheckpointError`, which names the file, the globals at
   fault and the conversion tool.

``weights_only=False`` is never used here; the one opt-in that unpickles
arbitrary code is ``tools/model_converters/convert_legacy_checkpoint.py
--trust-pickle``.

What the allow-list holds, and why. An mmengine checkpoint is
``dict(meta, state_dict, message_hub, optimizer, param_schedulers)``
(``Runner.save_checkpoint``); tensors, ``OrderedDict``, ``Counter`` (the
milestones of MultiStepLR), ``set``, ``complex``, ``bytearray`` and non-empty
``bytes`` (``_codecs.encode``) are allowed by torch already. Everything else
is what these types become in pickle protocol 2, the protocol of
``torch.save``:

``mmengine.logging.history_buffer.HistoryBuffer``
    ``message_hub.log_scalars`` maps every logged scalar (``train/loss``,
    ``train/lr``, ...) to one; resuming restores them.
``builtins.getattr`` -> :func:`_history_buffer_statistic`
    ``HistoryBuffer.__getstate__`` stores its statistics methods, which
    protocol 2 pickles as ``getattr(HistoryBuffer, 'min')`` (max, current,
    mean). The real ``getattr`` would reach anything (``getattr(getattr,
    '__self__')`` is the builtins module); the stand-in resolves those four
    lookups only.
``builtins.bytes`` -> :func:`_empty_bytes`
    protocol 2 pickles ``b''`` as ``bytes()``: the raw data of every empty
    numpy array, e.g. the histories of an empty HistoryBuffer. The stand-in
    takes no arguments (``bytes(10**12)`` would allocate a terabyte).
``numpy.dtype`` -> :func:`_numeric_dtype`
    every numpy array and scalar pickles its dtype as ``dtype('f8', False,
    True)`` followed by a BUILD with the dtype's state. numpy applies that
    state unchecked (fields, offsets, item flags): a forged state gives a
    float64 a field past its 8 bytes, or an object field whose pointers are
    the file's bytes. The stand-in returns numpy's shared native dtype of the
    type, whose ``__setstate__`` ignores any state, and refuses non-numeric
    (object, string, void, datetime), structured and non-native dtypes.
the classes of those dtypes (:data:`NUMERIC_DTYPE_CLASSES`)
    torch only BUILDs instances of allow-listed types. They are derived from
    numpy's own typecodes: every bool, integer, float and complex type
    (``np.typecodes``), as the spec its pickle writes.
``numpy.ndarray``, ``numpy._core.multiarray._reconstruct``
    arrays (the HistoryBuffer histories, array values in ``meta``): protocol
    2 pickles ``_reconstruct(ndarray, (0,), b'b')`` plus a BUILD with shape,
    dtype and raw data, which numpy checks against each other.
``numpy._core.multiarray.scalar``
    numpy scalars (``runtime_info['eta']`` is a ``np.float64``, evaluators
    log numpy metrics): ``scalar(dtype, raw bytes)``.
``numpy.core.multiarray._reconstruct``, ``numpy.core.multiarray.scalar``
    the same functions as numpy < 2 spells them, for checkpoints saved under
    numpy 1.x.

Byte order lives only in the dtype state, which the stand-in ignores:
arrays saved with a non-native byte order (mmengine writes none) load with
their bytes read in native order, i.e. wrong values. A full unpickle (the
conversion tool's) reads them right and writes native arrays.
"""
import os.path as osp
import pickle
from typing import Callable, Dict, Tuple, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

try:  # numpy >= 2
    from numpy._core import multiarray as _np_multiarray
except ImportError:  # numpy 1.x
    from numpy.core import multiarray as _np_multiarray

# The statistics HistoryBuffer registers for itself (_set_default_statistics)
HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')
# numpy's dtype kinds of bool, signed, unsigned, float and complex numbers
NUMERIC_DTYPE_KINDS = 'biufc'
CONVERTER = 'tools/model_converters/convert_legacy_checkpoint.py'
# How torch.load's weights-only error ends (after the unpickler's reason)
_TORCH_DOCS_HINT = 'Check the documentation of torch.load'


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint that weights-only unpickling refused."""


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


def _empty_bytes(*args) -> bytes:
    """Stand-in for ``builtins.bytes``: protocol 2 pickles ``b''`` so.

    Args:
        *args: Must be empty.

    Returns:
        bytes: ``b''``.

    Raises:
        pickle.UnpicklingError: If called with arguments.
    """
    if args:
        raise pickle.UnpicklingError(
            f'checkpoint asks for bytes{args!r}; weights-only loading only '
            "rebuilds bytes(), the pickle of b''.")
    return b''


def _numeric_dtype(spec: str,
                   align: bool = False,
                   copy: bool = True) -> np.dtype:
    """Stand-in for ``numpy.dtype``: numpy's native dtype of a number type.

    Args:
        spec (str): The spec numpy pickles, e.g. ``'f8'``.
        align (bool): Ignored; it only affects structured dtypes, which are
            refused. Defaults to False.
        copy (bool): Ignored: the shared dtype is returned, not a copy, as
            its ``__setstate__`` ignores the (possibly forged) state the
            pickle BUILDs next. Defaults to True.

    Returns:
        np.dtype: ``np.dtype(<scalar type of spec>)``.

    Raises:
        pickle.UnpicklingError: If ``spec`` is not the native spec of a bool,
            integer, float or complex type.
    """
    dtype = None
    if isinstance(spec, str):
        try:
            dtype = np.dtype(spec)
        except (TypeError, ValueError, SyntaxError):  # numpy's spec parser
            pass  # refused below
    if (dtype is None or dtype.kind not in NUMERIC_DTYPE_KINDS
            or dtype.fields is not None or not dtype.isnative):
        raise pickle.UnpicklingError(
            f'checkpoint asks for numpy.dtype({spec!r}); weights-only '
            'loading only rebuilds native bool, integer, float and complex '
            'dtypes (object, string and void dtypes can hold Python objects '
            'or forged memory layouts).')
    return np.dtype(dtype.type)


def _numeric_dtype_specs() -> Tuple[str, ...]:
    """The dtype specs numpy pickles for its bool and number types.

    Returns:
        tuple[str]: e.g. ``('b1', 'i1', ..., 'f8', 'f16', 'c8', ...)``; the
        long double widths depend on the platform.
    """
    codes = '?' + np.typecodes['AllInteger'] + np.typecodes['AllFloat']
    specs = (np.dtype(code).__reduce__()[1][0] for code in codes)
    return tuple(dict.fromkeys(specs))


NUMERIC_DTYPE_SPECS = _numeric_dtype_specs()
# One class per spec, e.g. numpy.dtypes.Float64DType
NUMERIC_DTYPE_CLASSES = tuple(
    dict.fromkeys(type(_numeric_dtype(spec)) for spec in NUMERIC_DTYPE_SPECS))

SafeGlobal = Union[Callable, Tuple[Callable, str]]

MMENGINE_CHECKPOINT_GLOBALS: Tuple[SafeGlobal, ...] = (
    HistoryBuffer,
    (_history_buffer_statistic, 'builtins.getattr'),
    (_empty_bytes, 'builtins.bytes'),
    (_numeric_dtype, 'numpy.dtype'),
    np.ndarray,
    (_np_multiarray._reconstruct, 'numpy._core.multiarray._reconstruct'),
    (_np_multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
    (_np_multiarray.scalar, 'numpy._core.multiarray.scalar'),
    (_np_multiarray.scalar, 'numpy.core.multiarray.scalar'),
) + NUMERIC_DTYPE_CLASSES


def _refusal_message(filename: str, err: pickle.UnpicklingError) -> str:
    """Say which file was refused, why, and how to convert a trusted one.

    Args:
        filename (str): The checkpoint path.
        err (pickle.UnpicklingError): torch's error.

    Returns:
        str: The message of :class:`UnsafeCheckpointError`.
    """
    try:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
    except ValueError:  # a legacy (not zip) torch.save file
        unsafe = []
    if unsafe:
        reason = ('it names globals outside the weights-only allow-list '
                  f"(mmvis_msts.utils.safe_load): {', '.join(unsafe)}. "
                  'Unpickling those can run any code')
    else:
        # torch wraps the unpickler's reason (the paragraph before its
        # docs hint) in advice to pass weights_only=False: keep the reason
        paragraphs = str(err).split(_TORCH_DOCS_HINT)[0].strip().split('\n\n')
        reason = ('the weights-only unpickler refused it: '
                  f"{paragraphs[-1].strip().rstrip('.')}")
    return (f'{filename}: not loaded, {reason}. No code from the file was '
            'run. If you trust the file (e.g. a checkpoint you saved with '
            f'older code), convert it once: python {CONVERTER} {filename} '
            'OUT.pth --trust-pickle (docs/reliability.md, "Untrusted '
            'files").')


def load_checkpoint_weights_only(
    filename: str,
    map_location: Union[str, Callable, torch.device, Dict,
                        None] = 'cpu') -> dict:
    """``torch.load`` a checkpoint with ``weights_only=True``.

    Args:
        filename (str): Path of a local checkpoint file.
        map_location (str | Callable | torch.device | dict, optional): See
            ``torch.load``. Defaults to ``'cpu'``.

    Returns:
        dict: The checkpoint (``meta``, ``state_dict``, ``message_hub``,
        ``optimizer``, ``param_schedulers`` for a Runner checkpoint).

    Raises:
        UnsafeCheckpointError: If the file needs a global outside
            :data:`MMENGINE_CHECKPOINT_GLOBALS` (and torch's own list).
    """
    try:
        return torch.load(
            filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(_refusal_message(filename, err)) from None


@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_from_local(
    filename: str,
    map_location: Union[str, Callable, torch.device, Dict,
                        None] = None) -> dict:
    """mmengine's local-path checkpoint loader, weights-only.

    Replaces ``mmengine.runner.checkpoint.load_from_local`` (same checks,
    same name, so mmengine logs "Loads checkpoint by local backend").

    Args:
        filename (str): Local checkpoint path; ``~`` is expanded.
        map_location (str | Callable | torch.device | dict, optional): See
            ``torch.load``. Defaults to None.

    Returns:
        dict: The loaded checkpoint.

    Raises:
        FileNotFoundError: If there is no such file.
        UnsafeCheckpointError: See :func:`load_checkpoint_weights_only`.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return load_checkpoint_weights_only(filename, map_location=map_location)


torch.serialization.add_safe_globals(list(MMENGINE_CHECKPOINT_GLOBALS))
