"""Validation of VIS data sets: annotation files and their frames.

:func:`check_annotations` and :func:`check_frames` return a list of
:class:`Problem` (severity, file, video / annotation / frame, message);
:func:`report_problems` raises :class:`VISDatasetError` on fatal ones or
logs them. The datasets run them when built (``strict`` and
``frame_check`` options of :class:`CheckedVideoDatasetMixin`), the
converters before converting, and ``tools/misc/check_dataset.py`` on a
whole data set.
"""
from .annotations import (FORMATS, check_annotations, detect_format,
                          drop_faulty, frame_refs, load_json)
from .frames import FRAME_CHECKS, FrameRef, check_frame_level, check_frames
from .masks import rle_string_totals
from .problems import (FATAL, PROBLEM_KINDS, WARNING, Problem, VISDatasetError,
                       count_kinds, report_problems, summarize)

__all__ = [
    'FORMATS', 'check_annotations', 'detect_format', 'drop_faulty',
    'frame_refs', 'load_json', 'FRAME_CHECKS', 'FrameRef', 'check_frame_level',
    'check_frames', 'rle_string_totals', 'FATAL', 'PROBLEM_KINDS', 'WARNING',
    'Problem', 'VISDatasetError', 'count_kinds', 'report_problems', 'summarize'
]
