"""Say why a checkpoint cannot be resumed by this run's model and optimizer.

mmengine resumes with ``strict=False``: a checkpoint of another model loads
the matching weights, logs the others, and then fails deep inside torch's
``Optimizer.load_state_dict``, or resumes a half-loaded model. Resuming
continues one training, so it needs the same weights and parameter groups;
:func:`weights_mismatch` and :func:`optimizer_mismatch` list what
differs.
"""
import re
from typing import Dict, List, Mapping, Sequence, Tuple

from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch import Tensor

# Keys named per kind of difference; the rest are counted
NUM_KEYS_SHOWN = 5


class CheckpointMismatchError(RuntimeError):
    """A checkpoint of another model or optimizer set-up was resumed."""


def _some(keys: Sequence[str]) -> str:
    """The first :data:`NUM_KEYS_SHOWN` keys and how many more there are."""
    shown = ', '.join(keys[:NUM_KEYS_SHOWN])
    rest = len(keys) - NUM_KEYS_SHOWN
    return shown + (f' (and {rest} more)' if rest > 0 else '')


def weights_mismatch(saved: Mapping[str, Tensor], current: Mapping[str,
                                                                   Tensor],
                     revise_keys: Sequence[Tuple[str, str]]) -> List[str]:
    """Differences between two state dicts.

    Args:
        saved (Mapping[str, Tensor]): The checkpoint's ``state_dict``.
        current (Mapping[str, Tensor]): The model's ``state_dict()``.
        revise_keys (Sequence[tuple[str, str]]): ``(pattern, replacement)``
            applied to the saved keys first, as ``Runner.load_checkpoint``
            does.

    Returns:
        list[str]: One line per kind of difference (missing, unexpected,
        shape); empty if the keys and shapes agree.
    """
    revised = {}
    for key, value in saved.items():
        for pattern, replacement in revise_keys:
            key = re.sub(pattern, replacement, key)
        revised[key] = value
    missing = [k for k in current if k not in revised]
    unexpected = [k for k in revised if k not in current]
    shapes = [
        f'{k} {tuple(revised[k].shape)} saved, {tuple(v.shape)} here'
        for k, v in current.items()
        if k in revised and revised[k].shape != v.shape
    ]
    lines = []
    if missing:
        lines.append(f'{len(missing)} weights of this model are not in the '
                     f'checkpoint: {_some(missing)}')
    if unexpected:
        lines.append(f'{len(unexpected)} weights of the checkpoint are not '
                     f'in this model: {_some(unexpected)}')
    if shapes:
        lines.append(f'{len(shapes)} weights differ in shape: '
                     f'{_some(shapes)}')
    return lines


def _group_sizes(optimizer_state: dict) -> Tuple[int, ...]:
    """Tensors per parameter group of a torch optimizer state dict."""
    return tuple(
        len(group['params'])
        for group in optimizer_state.get('param_groups', ()))


def optimizer_mismatch(saved: dict, optim_wrapper: OptimWrapper) -> List[str]:
    """Differences between a saved and this run's optimizer layout.

    The layout is the optimizer names (of an ``OptimWrapperDict``) and the
    number of tensors in each parameter group, which
    ``Optimizer.load_state_dict`` requires to match.

    Args:
        saved (dict): The checkpoint's ``optimizer`` entry.
        optim_wrapper (OptimWrapper): This run's (built) optimizer wrapper,
            maybe an ``OptimWrapperDict``.

    Returns:
        list[str]: One line per difference; empty if the layouts agree.
    """
    current = optim_wrapper.state_dict()
    if isinstance(optim_wrapper, OptimWrapperDict):
        saved_sizes: Dict[str, tuple] = {
            name: _group_sizes(state)
            for name, state in saved.items()
        }
        current_sizes = {
            name: _group_sizes(state)
            for name, state in current.items()
        }
    else:
        saved_sizes = {'optimizer': _group_sizes(saved)}
        current_sizes = {'optimizer': _group_sizes(current)}
    if set(saved_sizes) != set(current_sizes):
        return [
            f'the checkpoint has optimizers {sorted(saved_sizes)}, this '
            f'config {sorted(current_sizes)}'
        ]
    return [
        f'{name!r}: parameter groups of {saved_sizes[name]} tensors saved, '
        f'{sizes} here' for name, sizes in current_sizes.items()
        if saved_sizes[name] != sizes
    ]


def resume_mismatch_message(filename: str, model_name: str,
                            lines: Sequence[str]) -> str:
    """The message of :class:`CheckpointMismatchError`.

    Args:
        filename (str): The checkpoint path.
        model_name (str): This run's model class.
        lines (Sequence[str]): Output of :func:`weights_mismatch` and
            :func:`optimizer_mismatch`.

    Returns:
        str: What differs and how to go on.
    """
    details = ''.join(f'\n  - {line}' for line in lines)
    return (f'cannot resume from {filename}: it was saved by another model '
            f'or optimizer set-up than this config builds ({model_name}):'
            f'{details}\nResume with the config the checkpoint was trained '
            "with (its meta['cfg'] holds it), or start a new training from "
            'its weights with load_from and without resume.')
