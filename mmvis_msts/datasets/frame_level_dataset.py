"""One training sample per frame of a video dataset (SeqFormer's epochs)."""
import bisect
import copy
from typing import Tuple, Union

import numpy as np
from mmdet.datasets import BaseVideoDataset
from mmdet.registry import DATASETS
from mmengine.dataset import force_full_init


@DATASETS.register_module()
class FrameLevelVideoDataset:
    """Index a video dataset by frame: sample i is (video v, frame f).

    SeqFormer defines an epoch as one clip per annotated frame, anchored at
    that frame. ``BaseVideoDataset`` indexes videos, so a ``DefaultSampler``
    over it gives one clip per video per epoch with a random anchor (about
    28x fewer clips on YouTube-VIS 2019), and mixing it with an image dataset
    in a ``ConcatDataset`` would let the images dominate. This wrapper has
    one index per frame and passes ``(video, frame)`` to the video dataset,
    whose ``prepare_data`` sets ``key_frame_id`` for the clip sampler
    (``SeqFormerClipSample``). Unlike mmdet's ``TrackImgSampler`` it works
    with any sampler, inside a ``ConcatDataset`` and with
    ``TrackAspectRatioBatchSampler`` (``get_data_info`` returns the video).

    Refetching after a ``None`` from the pipeline is the wrapped dataset's
    (a random other video, random anchor).

    Args:
        dataset (BaseVideoDataset | dict): The video dataset or its config.
        lazy_init (bool): Defer loading the annotations. Defaults to False.
    """

    def __init__(self,
                 dataset: Union[BaseVideoDataset, dict],
                 lazy_init: bool = False) -> None:
        if isinstance(dataset, dict):
            dataset = DATASETS.build(dataset)
        if not isinstance(dataset, BaseVideoDataset):
            raise TypeError('FrameLevelVideoDataset wraps a BaseVideoDataset, '
                            f'got {type(dataset).__name__}')
        if dataset.test_mode:
            raise ValueError('FrameLevelVideoDataset is for training; test '
                             'datasets must stay video-level for the metric')
        self.dataset = dataset
        self._metainfo = dataset.metainfo
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        """dict: A copy of the wrapped dataset's meta information."""
        return copy.deepcopy(self._metainfo)

    def full_init(self) -> None:
        """Load the wrapped dataset and count the frames of every video."""
        if self._fully_initialized:
            return
        self.dataset.full_init()
        lengths = [
            self.dataset.get_len_per_video(i)
            for i in range(len(self.dataset))
        ]
        self._ends = np.cumsum(lengths).tolist()
        self._fully_initialized = True

    @force_full_init
    def locate(self, idx: int) -> Tuple[int, int]:
        """Map a frame-level index to (video index, frame index).

        Args:
            idx (int): Index in ``[0, len(self))``.

        Returns:
            tuple[int, int]: The video's index in the wrapped dataset and the
            frame's position in that video.
        """
        if not 0 <= idx < len(self):
            raise IndexError(f'index {idx} out of range for {len(self)} '
                             'frames')
        video = bisect.bisect_right(self._ends, idx)
        start = self._ends[video - 1] if video else 0
        return video, idx - start

    @force_full_init
    def get_data_info(self, idx: int) -> dict:
        """The video info of sample ``idx`` with its ``key_frame_id``.

        Args:
            idx (int): Frame-level index.

        Returns:
            dict: A copy of the video's data info.
        """
        video, frame = self.locate(idx)
        info = self.dataset.get_data_info(video)
        info['key_frame_id'] = frame
        return info

    def __getitem__(self, idx: int) -> dict:
        if not self._fully_initialized:
            self.full_init()
        return self.dataset[self.locate(idx)]

    @force_full_init
    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0
