"""The check of a training step's losses before any parameter update.

A NaN or infinite loss term turns every weight it reaches into NaN at the
next optimizer step, and training goes on silently from then on.
:func:`check_losses` runs on the loss terms of a step before its update:
``'raise'`` stops the run with :class:`NonFiniteLossError`, ``'skip'``
drops the step's update, logs it and counts it in the message hub (saved
in checkpoints, so a resumed run continues the count).
"""
import logging
from typing import Dict

import torch
from mmdet.structures import TrackSampleList
from mmengine.dist import all_reduce
from mmengine.logging import MessageHub, print_log
from torch import Tensor

NONFINITE_LOSS_MODES = ('raise', 'skip')
# MessageHub runtime-info key of the number of skipped steps
SKIPPED_STEPS_KEY = 'nonfinite_loss_skipped_steps'


class NonFiniteLossError(FloatingPointError):
    """A loss term of a training step is NaN or infinite."""


def nonfinite_terms(log_vars: Dict[str, Tensor]) -> Dict[str, float]:
    """The loss terms that are NaN or infinite.

    Args:
        log_vars (dict[str, Tensor]): ``parse_losses``'s scalar log vars;
            the keys containing ``'loss'`` are the loss terms and their
            sum.

    Returns:
        dict[str, float]: Those of the loss terms that are not finite.
    """
    names = [name for name in log_vars if 'loss' in name]
    values = torch.stack(
        [log_vars[name].detach().float().reshape(()) for name in names])
    finite = torch.isfinite(values)
    if bool(finite.all()):  # the one host sync of a healthy step
        return {}
    return {
        name: float(value)
        for name, value, ok in zip(names, values.tolist(), finite.tolist())
        if not ok
    }


def describe_batch(data_samples: TrackSampleList) -> str:
    """Name the clips of a batch, e.g. ``video 3 (frames 4, 5, 6)``.

    Args:
        data_samples (list[TrackDataSample]): The batch's clips.

    Returns:
        str: Their video ids and frame ids, from the frames' metainfo.
    """
    clips = []
    for sample in data_samples:
        frames = [sample[i].metainfo for i in range(len(sample))]
        frame_ids = ', '.join(str(f.get('frame_id', '?')) for f in frames)
        video_id = frames[0].get('video_id', '?') if frames else '?'
        clips.append(f'video {video_id} (frames {frame_ids})')
    return '; '.join(clips)


def check_losses(log_vars: Dict[str, Tensor], data_samples: TrackSampleList,
                 mode: str, sub_step: str) -> bool:
    """Let a step's update happen only if all its loss terms are finite.

    In a distributed run the ranks agree (one all-reduce): a non-finite
    term on any rank raises, or skips the step, on every rank, so that no
    rank waits forever in the gradient all-reduce of the others.

    Args:
        log_vars (dict[str, Tensor]): The step's log vars
            (``parse_losses``).
        data_samples (list[TrackDataSample]): The step's batch.
        mode (str): ``'raise'`` or ``'skip'``.
        sub_step (str): What would be updated, for the message (e.g.
            ``'model update'``).

    Returns:
        bool: True if the update may go ahead, False if it is skipped.

    Raises:
        NonFiniteLossError: In mode ``'raise'``, naming the terms, the
            iteration and the batch's videos.
    """
    bad = nonfinite_terms(log_vars)
    flag = torch.tensor(
        float(bool(bad)), device=next(iter(log_vars.values())).device)
    all_reduce(flag, op='max')
    if not bool(flag):
        return True
    hub = MessageHub.get_current_instance()
    it = hub.get_info('iter')
    where = 'outside a training loop' if it is None else \
        f'iteration {it + 1} (1-based, as logged)'
    # the total ('loss') only when no term explains it (overflow of the sum)
    named = {k: v for k, v in bad.items() if k != 'loss'} or bad
    terms = ', '.join(f'{name}={value}' for name, value in named.items()) \
        or 'none on this rank, on another one'
    message = (f'non-finite loss before the {sub_step} at {where}: {terms}. '
               f'Batch: {describe_batch(data_samples)}')
    if mode == 'raise':
        raise NonFiniteLossError(
            f'{message}. The {sub_step} was not made and the run stops '
            "before its next checkpoint; model.nonfinite_loss='skip' skips "
            'such steps instead.')
    skipped = hub.get_info(SKIPPED_STEPS_KEY, 0) + 1
    hub.update_info(SKIPPED_STEPS_KEY, skipped)
    print_log(
        f"{message}. Update skipped (model.nonfinite_loss='skip'); "
        f'{skipped} step(s) skipped in this training so far.',
        logger='current',
        level=logging.WARNING)
    return False
