import copy
import random

import pytest
from mmdet.datasets.transforms import UniformRefFrameSample

from mmvis_msts.datasets.transforms import SeqFormerClipSample


def make_video(num_frames, annotated=None, frame_ids=None):
    """A BaseVideoDataset-style video info; all frames annotated unless
    ``annotated`` lists the annotated positions."""
    frame_ids = list(range(num_frames)) if frame_ids is None else frame_ids
    images = []
    for pos in range(num_frames):
        has = annotated is None or pos in annotated
        images.append(
            dict(
                img_id=100 + pos,
                img_path=f'{pos}.jpg',
                frame_id=frame_ids[pos],
                instances=[dict(bbox=[0, 0, 2, 2], ignore_flag=0)]
                if has else []))
    return dict(video_id=7, video_length=num_frames, images=images)


def sample(sampler, video, key_frame_id):
    return sampler.sampling_frames(video['images'], key_frame_id)


@pytest.mark.parametrize('anchor', list(range(3, 27)))
def test_clip_rules_in_the_middle_of_a_video(anchor):
    sampler = SeqFormerClipSample()
    video = make_video(30)
    random.seed(anchor)
    for _ in range(20):
        positions, flags = sample(sampler, video, anchor)
        assert len(positions) == 5 and len(set(positions)) == 5
        assert positions == sorted(positions)
        assert flags.count(True) == 1
        key = flags.index(True)
        assert positions[key] == anchor
        # The clip neighbours of the anchor are the two local frames...
        before, after = positions[key - 1], positions[key + 1]
        assert 1 <= anchor - before <= 3
        assert 1 <= after - anchor <= 3
        # ...and the two global frames lie outside that local window.
        others = positions[:key - 1] + positions[key + 2:]
        assert len(others) == 2
        assert all(p < before or p > after for p in others)


def test_local_frames_cover_the_whole_range():
    sampler = SeqFormerClipSample()
    video = make_video(30)
    random.seed(0)
    offsets = set()
    for _ in range(200):
        positions, flags = sample(sampler, video, 15)
        key = flags.index(True)
        offsets.add(positions[key - 1] - 15)
        offsets.add(positions[key + 1] - 15)
    assert offsets == {-3, -2, -1, 1, 2, 3}


def test_configurable_clip_length_and_local_range():
    sampler = SeqFormerClipSample(num_frames=7, local_range=(2, 4))
    video = make_video(40)
    random.seed(1)
    for _ in range(20):
        positions, flags = sample(sampler, video, 20)
        key = flags.index(True)
        assert len(positions) == 7 and len(set(positions)) == 7
        assert 2 <= 20 - positions[key - 1] <= 4
        assert 2 <= positions[key + 1] - 20 <= 4


def test_anchor_at_the_video_start_gets_an_extra_global_frame():
    sampler = SeqFormerClipSample()
    video = make_video(12)
    random.seed(2)
    for _ in range(20):
        positions, flags = sample(sampler, video, 0)
        assert positions[0] == 0 and flags[0]
        assert len(set(positions)) == 5
        assert 1 <= positions[1] <= 3


def test_local_window_is_measured_in_frame_ids():
    # A filtered video: positions 0..5 hold frame ids 0, 1, 2, 10, 11, 12.
    sampler = SeqFormerClipSample()
    video = make_video(6, frame_ids=[0, 1, 2, 10, 11, 12])
    random.seed(3)
    for _ in range(20):
        positions, flags = sample(sampler, video, 4)
        assert {3, 4, 5} <= set(positions)
        assert len(set(positions)) == 5


@pytest.mark.parametrize('length', [1, 2, 3, 4])
def test_short_videos_repeat_frames_in_order(length):
    sampler = SeqFormerClipSample()
    video = make_video(length)
    random.seed(length)
    for anchor in range(length):
        positions, flags = sample(sampler, video, anchor)
        assert len(positions) == 5
        assert positions == sorted(positions)
        assert set(positions) == set(range(length))
        assert flags.count(True) == 1
        assert positions[flags.index(True)] == anchor


def test_empty_clips_are_resampled():
    # 40 frames, only 30..32 annotated; the anchor 5 sits in empty frames.
    sampler = SeqFormerClipSample(max_retries=3)
    video = make_video(40, annotated={30, 31, 32})
    random.seed(4)
    moved = 0
    for _ in range(50):
        positions, flags = sample(sampler, video, 5)
        assert set(positions) & {30, 31, 32}
        anchor = positions[flags.index(True)]
        assert anchor in (5, 30)
        moved += anchor == 30
    # Global frames sometimes hit 30..32 (anchor kept), sometimes not.
    assert 0 < moved < 50


def test_fallback_moves_the_anchor_to_the_nearest_annotated_frame():
    sampler = SeqFormerClipSample(max_retries=0)
    video = make_video(40, annotated={2, 30})
    random.seed(5)
    anchors = set()
    for _ in range(40):
        positions, flags = sample(sampler, video, 24)
        assert {2, 30} & set(positions)
        anchors.add(positions[flags.index(True)])
    # 30 is nearer to 24 than 2 is.
    assert anchors == {24, 30}


def test_ignored_instances_do_not_count():
    sampler = SeqFormerClipSample(max_retries=0)
    video = make_video(20, annotated={15})
    for pos, frame in enumerate(video['images']):
        if pos != 15:
            frame['instances'] = [dict(bbox=[0, 0, 2, 2], ignore_flag=1)]
    random.seed(6)
    for _ in range(10):
        positions, flags = sample(sampler, video, 0)
        assert 15 in positions


def test_video_without_annotations_terminates():
    sampler = SeqFormerClipSample(max_retries=5)
    video = make_video(10, annotated=set())
    random.seed(7)
    positions, flags = sample(sampler, video, 4)
    assert len(positions) == 5 and positions[flags.index(True)] == 4


def test_transform_output_matches_uniform_ref_frame_sample():
    video = make_video(10)
    random.seed(8)
    ours = SeqFormerClipSample()(copy.deepcopy(video))
    theirs = UniformRefFrameSample(num_ref_imgs=4)(copy.deepcopy(video))
    assert set(ours) == set(theirs)
    for key, value in ours.items():
        assert len(value) == 5, key
    assert ours['video_length'] == [5] * 5
    assert ours['ori_video_length'] == [10] * 5
    assert ours['video_id'] == [7] * 5
    assert ours['frame_id'] == sorted(ours['frame_id'])


def test_transform_uses_the_given_key_frame():
    video = make_video(10)
    video['key_frame_id'] = 6
    random.seed(9)
    results = SeqFormerClipSample()(video)
    key = results['key_frame_flags'].index(True)
    assert results['frame_id'][key] == 6


def test_transform_is_deterministic_under_a_seed():
    sampler = SeqFormerClipSample()
    outputs = []
    for _ in range(2):
        random.seed(123)
        outputs.append([sampler(make_video(25))['frame_id'] for _ in range(5)])
    assert outputs[0] == outputs[1]
    assert len({tuple(ids) for ids in outputs[0]}) > 1


def test_video_without_frames_is_refetched():
    assert SeqFormerClipSample()(make_video(0)) is None


@pytest.mark.parametrize('kwargs', [
    dict(num_frames=0),
    dict(local_range=(0, 3)),
    dict(local_range=(3, 1)),
    dict(max_retries=-1)
])
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        SeqFormerClipSample(**kwargs)


def test_key_frame_out_of_range():
    video = make_video(4)
    video['key_frame_id'] = 4
    with pytest.raises(ValueError, match='key_frame_id 4'):
        SeqFormerClipSample()(video)
