"""Problems found in a VIS data set, the project's dataset error, and how a
list of problems is reported (raised, or logged one by one with a count)."""
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from mmengine.logging import print_log

FATAL = 'fatal'
WARNING = 'warning'

#: What every kind of problem means. Fatal kinds stop a strict build; in
#: non-strict mode the item a fatal problem names is dropped (see
#: :attr:`Problem.drop`). Warnings never stop a build.
PROBLEM_KINDS: Dict[str, str] = {
    'invalid_json': 'malformed or truncated json',
    'bad_structure': 'top level not an object, or a required list missing',
    'class_mismatch': 'the dataset classes do not match the categories',
    'bad_category': 'a category entry with a missing or wrong-typed field',
    'duplicate_category': 'a category id or name used twice',
    'category_not_in_classes': 'a category outside the dataset classes',
    'bad_video': 'a video entry with a missing or wrong-typed field',
    'duplicate_video_id': 'a video id used twice',
    'bad_image': 'a frame entry with a missing or wrong-typed field',
    'duplicate_image_id': 'an image id used twice',
    'frame_order': "frame_ids not increasing in a video's frame list",
    'bad_annotation': 'an annotation with a missing or wrong-typed field',
    'duplicate_annotation_id': 'an annotation id used twice',
    'unknown_image': 'an annotation pointing at an unknown image',
    'unknown_video': 'an annotation or frame pointing at an unknown video',
    'video_mismatch': 'an annotation whose video is not its frame\'s',
    'unknown_category': 'an annotation pointing at an unknown category',
    'bad_segmentation': 'an invalid RLE or polygon',
    'bad_box': 'a malformed or empty box',
    'box_outside_frame': 'a box reaching outside its frame',
    'segmentation_length': "a raw track's per-frame lists not one per frame",
    'frame_size_mismatch': "a frame whose size is not its video's",
    'missing_frame': 'a frame file missing on disk',
    'corrupt_frame': 'a frame file that does not decode',
    'no_annotations': 'a file without annotations (a test split)',
    'video_without_frames': 'a video with no frames',
    'video_without_annotations': 'a video with no annotations',
    'one_frame_video': 'a video of one frame',
    'grayscale_frames': 'grayscale frames (read as 3 channels)',
    'alpha_frames': 'frames with an alpha channel (dropped on reading)',
}

#: ``(list key, index)`` of an entry of the annotation dict.
EntryRef = Tuple[str, int]


@dataclass(frozen=True)
class Problem:
    """One problem of a data set.

    Attributes:
        kind (str): A key of :data:`PROBLEM_KINDS`.
        severity (str): :data:`FATAL` or :data:`WARNING`.
        file (str): The annotation file.
        message (str): What is wrong, with the values at fault.
        video_id (int, optional): The video at fault. Defaults to None.
        annotation_id (int, optional): The annotation (raw format: the
            track) at fault. Defaults to None.
        frame (str, optional): The frame's ``file_name``. Defaults to None.
        drop (tuple[str, int], optional): The entry that non-strict mode
            removes, as (list key, index in that list), e.g.
            ``('annotations', 12)``. None for warnings and for problems of
            the whole file, which no dropping can fix. Defaults to None.
    """

    kind: str
    severity: str
    file: str
    message: str
    video_id: Optional[int] = None
    annotation_id: Optional[int] = None
    frame: Optional[str] = None
    drop: Optional[EntryRef] = None

    def __post_init__(self) -> None:
        if self.kind not in PROBLEM_KINDS:
            raise KeyError(f'unknown problem kind {self.kind!r}')
        if self.severity not in (FATAL, WARNING):
            raise ValueError(f'severity must be {FATAL!r} or {WARNING!r}, '
                             f'got {self.severity!r}')

    @property
    def fatal(self) -> bool:
        """bool: Whether the problem stops a strict build."""
        return self.severity == FATAL

    def __str__(self) -> str:
        where = []
        if self.video_id is not None:
            where.append(f'video {self.video_id}')
        if self.annotation_id is not None:
            where.append(f'annotation {self.annotation_id}')
        if self.frame is not None:
            where.append(f'frame {self.frame!r}')
        place = f'{self.file}: ' + (', '.join(where) + ': ' if where else '')
        return place + self.message


class VISDatasetError(ValueError):
    """An annotation file or its frames cannot be used as they are.

    Every message names the file and the video, annotation or frame at
    fault.

    Args:
        message (str): The error text.
        problems (Sequence[Problem]): All problems found (fatal ones and
            warnings). Defaults to ().
    """

    def __init__(self, message: str, problems: Sequence[Problem] = ()):
        super().__init__(message)
        self.problems: List[Problem] = list(problems)


def count_kinds(problems: Iterable[Problem]) -> Dict[Tuple[str, str], int]:
    """Number of problems per (severity, kind), fatal kinds first.

    Args:
        problems (Iterable[Problem]): The problems.

    Returns:
        dict[tuple[str, str], int]: Counts, sorted by severity (fatal
        first), then by decreasing count.
    """
    counts = Counter((p.severity, p.kind) for p in problems)
    return dict(
        sorted(counts.items(), key=lambda kv: (kv[0][0] != FATAL, -kv[1])))


def summarize(problems: Sequence[Problem]) -> str:
    """One line: counts of fatal problems and warnings, per kind.

    Args:
        problems (Sequence[Problem]): The problems.

    Returns:
        str: E.g. ``'2 fatal (missing_frame: 2), 1 warning
        (one_frame_video: 1)'``, or ``'no problems'``.
    """
    parts = []
    for severity in (FATAL, WARNING):
        kinds = {
            kind: n
            for (sev, kind), n in count_kinds(problems).items()
            if sev == severity
        }
        if kinds:
            total = sum(kinds.values())
            noun = severity if severity == FATAL or total == 1 else \
                'warnings'
            detail = ', '.join(f'{k}: {n}' for k, n in kinds.items())
            parts.append(f'{total} {noun} ({detail})')
    return ', '.join(parts) or 'no problems'


def report_problems(problems: Sequence[Problem],
                    source: str,
                    strict: bool = True,
                    max_listed: int = 20,
                    droppable: bool = True) -> None:
    """Raise on fatal problems, or log each problem and a count.

    Problems of the whole file (fatal with no ``drop``: invalid json, a
    missing key, classes that do not match the categories) raise in both
    modes.

    Args:
        problems (Sequence[Problem]): The problems of one data set.
        source (str): The annotation file, for the messages.
        strict (bool): Raise on any fatal problem. False logs a warning per
            problem (fatal ones are said to be dropped) and a count at the
            end. Defaults to True.
        max_listed (int): Fatal problems quoted in the error message.
            Defaults to 20.
        droppable (bool): Whether the caller has a non-strict mode (the
            error then mentions ``strict=False``). Defaults to True.

    Raises:
        VISDatasetError: On a fatal problem in strict mode, or a problem
            of the whole file.
    """
    fatal = [p for p in problems if p.fatal]
    unfixable = [p for p in fatal if p.drop is None]
    if unfixable or (strict and fatal):
        shown = unfixable or fatal
        lines = [f'{source}: {summarize(problems)}:']
        lines += [f'  {p}' for p in shown[:max_listed]]
        if len(shown) > max_listed:
            lines.append(f'  ... and {len(shown) - max_listed} more')
        lines.append(
            'python tools/misc/check_dataset.py <config or json> lists '
            'every problem' +
            ('; strict=False drops the faulty items with a warning each'
             if droppable and not unfixable else ''))
        raise VISDatasetError('\n'.join(lines), problems)
    for problem in problems:
        suffix = ' (dropped)' if problem.fatal else ''
        print_log(f'{problem}{suffix}', 'current', logging.WARNING)
    if problems:
        dropped = Counter(p.drop[0] for p in fatal)
        detail = ', '.join(f'{n} {key}' for key, n in dropped.items())
        print_log(
            f'{source}: {summarize(problems)}' +
            (f'; dropped entries: {detail}' if detail else ''), 'current',
            logging.WARNING)
