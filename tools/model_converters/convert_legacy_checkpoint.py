"""Re-save a trusted legacy checkpoint so that weights-only loading takes it.

    python tools/model_converters/convert_legacy_checkpoint.py IN OUT \\
        --trust-pickle

Every loader of this project (and, after ``import mmvis_msts``, torch's and
mmengine's) unpickles weights-only: tensors, plain containers and the types
allow-listed in ``mmvis_msts.utils.safe_load``. A checkpoint written by
older code may hold other Python objects (an ``argparse.Namespace``, a
custom class, an object-dtype array) and is refused. Unpickling it in full
runs whatever code its pickle names, so this tool does so only with
``--trust-pickle``; give it only for files you trust (ones you saved
yourself, or from a source you would run code from).

With the flag, ``IN`` is loaded with ``weights_only=False`` and rewritten:
tensors, ``None``/bool/int/float/complex/str/bytes, dicts, lists, tuples,
sets, numeric numpy arrays and scalars and ``HistoryBuffer`` s are kept;
what has a plain equivalent is converted (subclasses of the builtins and
containers to the builtins, ``argparse.Namespace`` to a dict, ``frozenset``
to a set, tensor subclasses to tensors, ndarray subclasses to ndarrays,
non-numeric numpy values to Python values); anything else is dropped. Every
conversion and drop is printed with its key path (``meta.extra``), and
``OUT`` is loaded back weights-only before the tool reports success.
"""
import argparse
import os.path as osp
from argparse import Namespace
from collections import Counter, OrderedDict
from typing import Any, Callable, Dict, List

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

from mmvis_msts.utils import load_checkpoint_weights_only

# numpy's dtype kinds of bool, signed, unsigned, float and complex numbers
NUMERIC_KINDS = 'biufc'
# Kept as they are (exact types; subclasses are converted)
PLAIN_TYPES = (type(None), bool, int, float, complex, str, bytes, bytearray,
               torch.dtype, torch.device, torch.Size, torch.Tensor,
               torch.nn.Parameter, dict, OrderedDict, Counter, list, tuple,
               set)
# (base, what its subclasses become), first match wins
CONVERSIONS = ((torch.Tensor, lambda t: t.as_subclass(torch.Tensor)),
               (Namespace, vars), (dict, dict), (list, list), (tuple, tuple),
               (set, set), (frozenset, set), (bool, bool), (int, int),
               (float, float), (complex, complex), (str, str), (bytes, bytes))
_DROP = object()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Re-save a trusted checkpoint for weights-only loading')
    parser.add_argument('in_file', help='checkpoint to convert (trusted)')
    parser.add_argument('out_file', help='where to write the result')
    parser.add_argument(
        '--trust-pickle',
        action='store_true',
        help='unpickle IN_FILE with weights_only=False, which runs any code '
        'its pickle names; give it only for files you trust')
    args = parser.parse_args()
    if not args.trust_pickle:
        parser.error(
            f'not loading {args.in_file}: unpickling it in full runs any code '
            'it names. If you trust the file, add --trust-pickle.')
    return args


def describe(value: Any) -> str:
    """Type name of ``value``, with its dtype for arrays and tensors."""
    kind = type(value)
    name = kind.__qualname__ if kind.__module__ == 'builtins' else \
        f'{kind.__module__}.{kind.__qualname__}'
    dtype = getattr(value, 'dtype', None)
    if isinstance(dtype, np.dtype):
        return f'{name}[{dtype.str}]'
    return name if dtype is None else f'{name}[{dtype}]'


class Converter:
    """Turns a fully unpickled checkpoint into weights-only loadable data.

    Attributes:
        notes (list[str]): ``'<key path>: <what was done>'``, one per
            converted or dropped value.
    """

    def __init__(self) -> None:
        self.notes: List[str] = []

    def convert(self, value: Any, path: str = '') -> Any:
        """Return ``value`` with everything in it weights-only loadable.

        Args:
            value (Any): A value of the checkpoint.
            path (str): Its key path, for the notes. Defaults to ``''``
                (the checkpoint itself).

        Returns:
            Any: The kept or converted value, or ``_DROP``.
        """
        if isinstance(value, (np.ndarray, np.generic)):
            return self._convert_numpy(value, path)
        if type(value) is HistoryBuffer:
            # 'statistics_methods' is written anew by __getstate__
            state = {
                k: v
                for k, v in vars(value).items() if k != 'statistics_methods'
            }
            buffer = HistoryBuffer.__new__(HistoryBuffer)
            buffer.__dict__.update(self._convert_items(state, path))
            return buffer
        if type(value) not in PLAIN_TYPES:
            to_plain = next(
                (f for base, f in CONVERSIONS if isinstance(value, base)),
                None)
            if to_plain is None:
                self.notes.append(f'{path or "<checkpoint>"}: dropped '
                                  f'{describe(value)}')
                return _DROP
            return self._note(path, value, self.convert(to_plain(value), path))
        if isinstance(value, dict):
            return type(value)(self._convert_items(value, path))
        if isinstance(value, (list, tuple, set)):
            items = (self.convert(v, f'{path}[{i}]')
                     for i, v in enumerate(value))
            return type(value)(v for v in items if v is not _DROP)
        return value

    def _convert_items(self, mapping: Dict, path: str) -> Dict:
        """Convert keys and values; drop the entries where either drops."""
        converted = {}
        for key, value in mapping.items():
            sub = f'{path}.{key}' if path else str(key)
            new_key = self.convert(key, f'{sub} (key)')
            new_value = self.convert(value, sub)
            if new_key is not _DROP and new_value is not _DROP:
                converted[new_key] = new_value
        return converted

    def _convert_numpy(self, value: Any, path: str) -> Any:
        """Numeric: a plain ndarray or scalar; other kinds: Python values.

        A full unpickle has already made arrays native-endian.
        """
        if value.dtype.kind not in NUMERIC_KINDS or value.dtype.fields:
            return self._note(path, value, self.convert(value.tolist(), path))
        if isinstance(value, np.generic) or type(value) is np.ndarray:
            return value
        return self._note(path, value, np.asarray(value))

    def _note(self, path: str, old: Any, new: Any) -> Any:
        """Record a conversion (unless ``new`` was dropped); return ``new``."""
        if new is not _DROP:
            self.notes.append(f'{path or "<checkpoint>"}: {describe(old)} -> '
                              f'{describe(new)}')
        return new


def _load_trusted(in_file: str, notes: List[str]) -> Any:
    """``torch.load(weights_only=False)``, keeping HistoryBuffer's registry.

    Unpickling a HistoryBuffer adds the file's statistics methods to the
    class-wide registry, which every HistoryBuffer pickles; those that are
    not HistoryBuffer's own are not carried over.

    Args:
        in_file (str): The trusted checkpoint.
        notes (list[str]): Receives a note per statistic not carried over.

    Returns:
        Any: The unpickled checkpoint.

    Raises:
        RuntimeError: If the file names code that cannot be imported.
    """
    registry: Dict[str, Callable] = HistoryBuffer._statistics_methods
    before = dict(registry)
    try:
        return torch.load(in_file, map_location='cpu', weights_only=False)
    except (AttributeError, ImportError) as err:
        raise RuntimeError(
            f'{in_file}: cannot unpickle it even in full ({err}); the code '
            'that defined its classes must be importable (installed, or on '
            'PYTHONPATH).') from err
    finally:
        for name, method in sorted(registry.items()):
            own = before.get(name, getattr(HistoryBuffer, name, None))
            if method is not own:
                notes.append(f'HistoryBuffer statistic {name!r}: dropped '
                             f'{method.__module__}.{method.__qualname__}')
                registry.pop(name)
        registry.update(before)


def convert_legacy_checkpoint(in_file: str, out_file: str) -> List[str]:
    """Load a trusted checkpoint in full and save a weights-only one.

    Args:
        in_file (str): The trusted checkpoint (any ``torch.save`` file).
        out_file (str): Where to write the converted checkpoint.

    Returns:
        list[str]: The notes, one per converted or dropped value.

    Raises:
        FileNotFoundError: If ``in_file`` does not exist.
        ValueError: If ``out_file`` is ``in_file``.
        UnsafeCheckpointError: If ``out_file`` still does not load
            weights-only (it is left in place for inspection).
    """
    if not osp.isfile(in_file):
        raise FileNotFoundError(f'{in_file} does not exist')
    if osp.exists(out_file) and osp.samefile(in_file, out_file):
        raise ValueError(f'{out_file} is the input; write elsewhere')
    converter = Converter()
    checkpoint = _load_trusted(in_file, converter.notes)
    converted = converter.convert(checkpoint)
    if converted is _DROP:
        raise ValueError(f'{in_file} holds a {describe(checkpoint)}, '
                         'nothing weights-only loadable')
    torch.save(converted, out_file)
    load_checkpoint_weights_only(out_file)
    return converter.notes


def main() -> None:
    args = parse_args()
    notes = convert_legacy_checkpoint(args.in_file, args.out_file)
    for note in notes:
        print(note)
    print(f'wrote {args.out_file} ({len(notes)} values converted or '
          'dropped); it loads with weights_only=True')


if __name__ == '__main__':
    main()
