"""SeqFormer's clip sampling for video instance segmentation training."""
import random
from typing import Dict, List, Optional, Sequence, Tuple

from mmdet.datasets.transforms import BaseFrameSample
from mmdet.registry import TRANSFORMS


@TRANSFORMS.register_module()
class SeqFormerClipSample(BaseFrameSample):
    """Sample a T-frame training clip around a key (anchor) frame.

    The rule of SeqFormer (and MS-STS VIS) for T = 5:

    1. the anchor: ``key_frame_id`` when the dataset gives one
       (``FrameLevelVideoDataset`` or mmdet's ``TrackImgSampler`` index
       ``(video, frame)``), otherwise a random frame (a ``DefaultSampler``
       over a video dataset: one clip per video and epoch, random anchor);
    2. one "local" frame ``local_range[0]..local_range[1]`` frames before
       the anchor and one as far after it (uniform over the frames that
       exist in that window);
    3. ``T - 3`` "global" frames drawn without replacement from outside the
       span of the frames chosen so far;
    4. everything sorted by time.

    Distances are measured in ``frame_id`` (the frame's index in the
    video's frame list of the json; YouTube-VIS lists every 5th raw frame,
    as SeqFormer samples), so a video whose frames without ground truth were
    filtered out keeps its time spacing; list positions are used when frames
    carry no ``frame_id``.

    Edge cases (never an infinite loop):

    - A local frame that does not exist (anchor at a video end, or a gap
      left by filtered frames) becomes one more global frame.
    - Too few frames outside the local span: the remaining unused frames
      are taken; a video with fewer than T frames uses every frame once and
      repeats randomly chosen frames to reach T (the clip stays sorted, so a
      repeated frame sits next to itself). SeqFormer does the same for
      short videos.
    - A clip whose frames hold no non-ignored instance is resampled around
      the same anchor up to ``max_retries`` times; if it is still empty, the
      anchor moves to the annotated frame nearest to it in time and the clip
      is sampled around that one, which cannot be empty. A video with no
      annotated frame at all is returned as sampled; one without frames
      (all filtered out by ``filter_empty_gt``) gives None, which makes
      mmengine's dataset draw another sample.

    The output is what :class:`mmdet.datasets.transforms.UniformRefFrameSample`
    gives: a dict of per-frame lists (T entries each, the frame infos
    augmented with ``video_id``, ``ori_video_length`` and ``video_length =
    T``) plus ``key_frame_flags`` (exactly one ``True``, at the anchor), so
    ``TransformBroadcaster`` and ``PackTrackInputs`` consume it unchanged.
    Randomness comes from Python's ``random`` module, like mmdet's samplers,
    so ``mmengine``'s seeding makes it reproducible.

    Args:
        num_frames (int): T, frames per clip. Defaults to 5.
        local_range (Sequence[int]): Inclusive (min, max) distance in frames
            of the two local frames from the anchor. Defaults to (1, 3).
        max_retries (int): Resampling attempts around the given anchor when
            the clip has no instance, before moving the anchor. Defaults to
            10.
        collect_video_keys (list[str]): Video-level keys copied into every
            frame. Defaults to ``['video_id', 'video_length']``.
    """

    def __init__(self,
                 num_frames: int = 5,
                 local_range: Sequence[int] = (1, 3),
                 max_retries: int = 10,
                 collect_video_keys: List[str] = ['video_id', 'video_length']):
        if num_frames < 1:
            raise ValueError(f'num_frames must be >= 1, got {num_frames}')
        if (len(local_range) != 2
                or not 1 <= local_range[0] <= local_range[1]):
            raise ValueError('local_range must be (min, max) with '
                             f'1 <= min <= max, got {local_range}')
        if max_retries < 0:
            raise ValueError(f'max_retries must be >= 0, got {max_retries}')
        super().__init__(collect_video_keys=collect_video_keys)
        self.num_frames = num_frames
        self.local_range = tuple(local_range)
        self.max_retries = max_retries

    def sample_positions(self, times: Sequence[int], anchor: int) -> List[int]:
        """Sample the clip's frame positions around one anchor.

        Args:
            times (Sequence[int]): Time stamp (frame id) of every frame of the
                video, increasing.
            anchor (int): Position of the anchor frame in ``times``.

        Returns:
            list[int]: T positions into ``times``, sorted, anchor included.
        """
        num_total = len(times)
        chosen = [anchor]
        # T = 2 keeps one local frame, on a random side.
        sides = random.sample([-1, 1], min(2, self.num_frames - 1))
        low, high = self.local_range
        for side in sides:
            window = [
                pos for pos in range(num_total)
                if low <= side * (times[pos] - times[anchor]) <= high
            ]
            if window:
                chosen.append(random.choice(window))
        num_global = self.num_frames - len(chosen)
        span_start, span_end = min(chosen), max(chosen)
        outside = [
            pos for pos in range(num_total)
            if pos < span_start or pos > span_end
        ]
        if len(outside) >= num_global:
            chosen += random.sample(outside, num_global)
        else:
            chosen += outside
            inside = [
                pos for pos in range(span_start, span_end + 1)
                if pos not in chosen
            ]
            chosen += random.sample(
                inside, min(len(inside), self.num_frames - len(chosen)))
            # Only a video shorter than T gets here with slots left.
            chosen += random.choices(
                range(num_total), k=self.num_frames - len(chosen))
        return sorted(chosen)

    @staticmethod
    def _frame_has_instances(frame: dict) -> bool:
        return any(not inst.get('ignore_flag', 0)
                   for inst in frame.get('instances', []))

    def sampling_frames(self, frames: List[dict],
                        key_frame_id: int) -> Tuple[List[int], List[bool]]:
        """Sample a non-empty clip (when possible) and flag its anchor.

        Args:
            frames (list[dict]): The video's frame infos, in time order.
            key_frame_id (int): Position of the requested anchor.

        Returns:
            tuple[list[int], list[bool]]: The sorted frame positions and the
            key-frame flags (``True`` only at the anchor's first occurrence).
        """
        times = [
            frame.get('frame_id', pos) for pos, frame in enumerate(frames)
        ]
        annotated = [
            pos for pos, frame in enumerate(frames)
            if self._frame_has_instances(frame)
        ]
        anchor = key_frame_id
        for _ in range(self.max_retries + 1):
            positions = self.sample_positions(times, anchor)
            if not annotated or set(positions) & set(annotated):
                break
        else:
            anchor = min(
                annotated, key=lambda pos: abs(times[pos] - times[anchor]))
            positions = self.sample_positions(times, anchor)
        key_frame_flags = [False] * len(positions)
        key_frame_flags[positions.index(anchor)] = True
        return positions, key_frame_flags

    def transform(self, video_infos: dict) -> Optional[Dict[str, List]]:
        """Sample the clip of one video.

        Args:
            video_infos (dict): The whole video (``BaseVideoDataset`` data
                info: ``images``, ``video_id``, ``video_length`` and
                optionally ``key_frame_id``).

        Returns:
            dict[str, list] | None: Per-frame lists of the sampled frame
            infos (T entries each) plus ``key_frame_flags``; None for a video
            without frames, so that mmengine's dataset refetches.
        """
        frames = video_infos['images']
        if not frames:
            # Every frame was filtered out (no ground truth): let the dataset
            # refetch another sample.
            return None
        key_frame_id = video_infos.get('key_frame_id')
        if key_frame_id is None:
            key_frame_id = random.randrange(len(frames))
        elif not 0 <= key_frame_id < len(frames):
            raise ValueError(f'key_frame_id {key_frame_id} is out of range '
                             f'for video {video_infos.get("video_id")} '
                             f'with {len(frames)} frames')
        positions, key_frame_flags = self.sampling_frames(frames, key_frame_id)
        results = self.prepare_data(video_infos, positions)
        results['key_frame_flags'] = key_frame_flags
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_frames={self.num_frames}, '
                f'local_range={self.local_range}, '
                f'max_retries={self.max_retries}, '
                f'collect_video_keys={self.collect_video_keys})')
