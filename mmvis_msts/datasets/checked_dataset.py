"""Video datasets that check their annotation file and frames when built.

The checks of :mod:`mmvis_msts.datasets.validation` run in
``load_data_list``, i.e. when the dataset is built (or at ``full_init``
with ``lazy_init=True``), in the main process: a bad file fails before
training starts, with the file and the video, annotation or frame at fault,
instead of in a data-loader worker thousands of iterations later.
"""
import json
import os.path as osp
import tempfile
from typing import List

from mmdet.datasets import YouTubeVISDataset
from mmdet.registry import DATASETS
from mmengine.logging import print_log

from .validation import (Problem, check_annotations, check_frame_level,
                         check_frames, drop_faulty, frame_refs, load_json,
                         report_problems)


class CheckedVideoDatasetMixin:
    """Check the COCO-video json (and frames) of a ``BaseVideoDataset``.

    Put it before the dataset class: ``class MyVIS(CheckedVideoDatasetMixin,
    YouTubeVISDataset)``. The json is read and checked once; mmdet then
    loads it as usual (a strict build without fatal problems reads the
    file a second time, about as long as the checks: see
    docs/custom_data.md for the costs).

    Args:
        *args: Positional arguments of the dataset class.
        strict (bool): Raise :class:`VISDatasetError` on any fatal problem.
            False logs a warning per problem, drops the faulty entries (an
            annotation, a frame, a video or a category, with what depends
            on it) and logs a count at the end; problems of the whole file
            (invalid json, a missing key, classes that do not match the
            categories) raise in both modes. Defaults to True.
        frame_check (str): What is read of every frame at build time:
            'none', 'exists' (a stat per frame), 'header' (size and
            channels from the image header) or 'decode' (every pixel; for
            ``tools/misc/check_dataset.py`` rather than each build).
            Defaults to 'exists'.
        **kwargs: Keyword arguments of the dataset class.

    Attributes:
        data_problems (list[Problem]): The problems found by the last
            load (warnings, and in non-strict mode the dropped ones).
    """

    def __init__(self,
                 *args,
                 strict: bool = True,
                 frame_check: str = 'exists',
                 **kwargs) -> None:
        self.strict = strict
        self.frame_check = check_frame_level(frame_check)
        self.data_problems: List[Problem] = []
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Check the annotation file and its frames, then load it.

        Returns:
            list[dict]: One dict per video (see ``BaseVideoDataset``).

        Raises:
            VISDatasetError: On a fatal problem (strict mode), or one of
                the whole file (both modes).
        """
        ann = load_json(self.ann_file, self.backend_args)
        problems = check_annotations(
            ann,
            self.ann_file,
            classes=self.metainfo.get('classes'),
            test_mode=self.test_mode,
            fmt='cocovid')
        if not any(p.fatal and p.drop is None for p in problems):
            problems += check_frames(
                frame_refs(ann, 'cocovid'),
                self.data_prefix.get('img_path'),
                self.ann_file,
                self.frame_check,
                backend_args=self.backend_args)
        report_problems(problems, self.ann_file, self.strict)
        self.data_problems = problems
        if not any(p.fatal for p in problems):
            return super().load_data_list()
        # non-strict: mmdet reads annotation files by path, so hand it the
        # cleaned dict as a file
        ann_file = self.ann_file
        with tempfile.TemporaryDirectory() as folder:
            self.ann_file = osp.join(folder, osp.basename(ann_file))
            with open(self.ann_file, 'w') as f:
                json.dump(drop_faulty(ann, problems), f)
            try:
                return super().load_data_list()
            finally:
                self.ann_file = ann_file

    def filter_data(self) -> List[dict]:
        """mmdet's filter, then (training only) without the videos that
        have no instance left: mmdet keeps such a video with all its frames
        (and ``video_length`` 0), and no clip with an object can be drawn
        from it.

        Returns:
            list[dict]: The videos kept.
        """
        data_list = super().filter_data()
        if self.test_mode:
            return data_list
        kept = [
            video for video in data_list
            if any(frame['instances'] for frame in video['images'])
        ]
        if len(kept) < len(data_list):
            print_log(
                f'{self.ann_file}: {len(data_list) - len(kept)} videos '
                'without instances are left out of training', 'current')
        return kept


@DATASETS.register_module()
class CheckedYouTubeVISDataset(CheckedVideoDatasetMixin, YouTubeVISDataset):
    """mmdet's :class:`YouTubeVISDataset` with the build-time checks of
    :class:`CheckedVideoDatasetMixin` (``strict``, ``frame_check``).

    A drop-in for ``type='YouTubeVISDataset'`` in a config.
    """
