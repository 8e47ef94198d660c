"""Tests of the synthetic VIS generator settings that are off by default:
objects that leave the view and come back (long videos), texture change,
shape stretch and motion blur (a harder split)."""
import dataclasses
import hashlib
import importlib.util
import json
import os.path as osp
from collections import defaultdict

import numpy as np
import pytest

from mmvis_msts.datasets.synthetic import (META_FILE, SPLITS, InstanceTrack,
                                           SyntheticVISSettings, VideoScene,
                                           generate_dataset, is_complete,
                                           make_video, render_scene,
                                           sample_scene, video_annotations)
from mmvis_msts.datasets.synthetic.shapes import Outline

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
NEW_SETTINGS = ('reentry_prob', 'reentry_gap', 'texture_change_prob',
                'shape_stretch', 'motion_blur')

BUSY = SyntheticVISSettings(
    seed=3,
    num_frames=(4, 8),
    frame_height=(48, 56),
    num_instances=(3, 3),
    occlusion_prob=1.0,
    partial_track_prob=1.0)

# sha256 of (frames, amodal and visible masks, labels, annotations) of a
# few videos, recorded with generator version 1 before the settings above
# existed: with them off the output must stay the same to the byte.
# (Recorded with this repository's pinned numpy and OpenCV; the rendering
# goes through their random streams, rasterisation and interpolation.)
V1_FINGERPRINTS = [
    (SyntheticVISSettings(), 'train', 0,
     '4398ce32098c6e8475666e53e6bba801a4fa3c0ac226c589a2bca00cadb99047'),
    (SyntheticVISSettings(), 'val', 0,
     'ab00ea7bfa23c4d8a02f1af65e256238d81302ccf1110df137e5eb2237385476'),
    (BUSY, 'train', 0,
     'bc04f9e45aa83b175b9484f56265329dc51cd9d3ea403d99b4922d91818fcd1c'),
]

# two objects, the second (in front, so never hidden) leaves and returns
LONG = SyntheticVISSettings(
    seed=5,
    num_frames=(60, 120),
    frame_height=(48, 48),
    num_instances=(2, 2),
    occlusion_prob=0.0,
    partial_track_prob=0.0,
    reentry_prob=1.0,
    reentry_gap=(0.15, 0.3))


def _fingerprint(video) -> str:
    digest = hashlib.sha256()
    for array in (video.frames, video.amodal, video.visible, video.labels):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(json.dumps(video_annotations(video)).encode())
    return digest.hexdigest()


@pytest.mark.parametrize('settings,split,index,expected', V1_FINGERPRINTS)
def test_defaults_reproduce_version_1(settings, split, index, expected):
    assert _fingerprint(make_video(settings, split, index)) == expected


def test_data_written_before_the_settings_still_matches(tmp_path):
    settings = dataclasses.replace(BUSY, num_train=1, num_val=1)
    root = str(tmp_path)
    generate_dataset(settings, root, progress=False)
    meta_path = osp.join(root, META_FILE)
    with open(meta_path) as f:
        meta = json.load(f)
    # a meta file as version 1 wrote it, before these settings existed
    for name in NEW_SETTINGS:
        del meta['settings'][name]
    with open(meta_path, 'w') as f:
        json.dump(meta, f)
    assert is_complete(settings, root)
    with pytest.raises(FileExistsError, match='motion_blur'):
        is_complete(dataclasses.replace(settings, motion_blur=0.5), root)


def _scene(settings: SyntheticVISSettings, split: str,
           index: int) -> VideoScene:
    """The scene ``make_video`` renders for this video."""
    rng = np.random.default_rng([settings.seed, SPLITS[split], index])
    return sample_scene(settings, rng)


def _runs(flags: np.ndarray) -> list:
    """(start, stop) of each run of True in a 1-d bool array."""
    edges = np.diff(np.concatenate([[0], flags.astype(int), [0]]))
    return list(zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]))


@pytest.mark.parametrize('index', range(3))
def test_reentry_gap(index):
    scene = _scene(LONG, 'val', index)
    video = make_video(LONG, 'val', index)
    num_frames = scene.num_frames
    assert 60 <= num_frames <= 120
    present = scene.instances[1].present
    [(start, stop)] = _runs(~present)
    assert 0.15 * num_frames - 1 <= stop - start <= 0.3 * num_frames + 1
    # a slide (a tenth of the video) and a frame in view on either side
    slide = round(0.1 * num_frames)
    assert start >= slide + 1 and stop <= num_frames - slide - 1
    assert scene.instances[0].present.all()

    annotated = np.zeros(num_frames, bool)
    for ann in video_annotations(video):
        if ann['instance'] == 1:
            annotated[ann['frame']] = True
    # absent on one middle run that holds the gap; the slides can add a
    # frame where the shape, smaller than its disc, is already out
    [(gone, back)] = _runs(~annotated)
    assert start - slide <= gone <= start and stop <= back <= stop + slide
    assert not video.amodal[start:stop, 1].any()
    # it leaves physically: little of it is left in view just before the gap
    area = video.amodal[:, 1].sum(axis=(1, 2))
    assert area[start - 1] < 0.5 * area[start - slide - 1]
    assert area[stop] < 0.5 * area[stop + slide]

    # switching reentry on keeps what the other settings drew: the object
    # that stays has the same masks
    stays = make_video(
        dataclasses.replace(LONG, reentry_prob=0.0), 'val', index)
    assert np.array_equal(stays.amodal[:, 0], video.amodal[:, 0])
    assert stays.amodal[:, 1].any(axis=(1, 2)).all()


def test_long_val_split_keeps_track_ids(tmp_path):
    # the documented long split, tiny: no train videos
    settings = dataclasses.replace(LONG, num_train=0, num_val=2)
    root = str(tmp_path)
    assert generate_dataset(settings, root, progress=False)
    with open(osp.join(root, 'annotations', 'train.json')) as f:
        train = json.load(f)
    assert train['videos'] == [] and train['annotations'] == []
    with open(osp.join(root, 'annotations', 'val.json')) as f:
        val = json.load(f)
    frame_of = {img['id']: img['frame_id'] for img in val['images']}
    for video_id in (1, 2):
        scene = _scene(settings, 'val', video_id - 1)
        [(start, stop)] = _runs(~scene.instances[1].present)
        frames_of = defaultdict(set)
        for ann in val['annotations']:
            if ann['video_id'] == video_id:
                frames_of[ann['instance_id']].add(frame_of[ann['image_id']])
        assert len(frames_of) == 2
        # the object that left comes back under the id it had before
        [returning] = [
            frames for frames in frames_of.values()
            if not frames & set(range(start, stop))
        ]
        assert min(returning) < start and max(returning) >= stop


def _flat_track(outline: Outline, centers: list, radius: float,
                **kwargs) -> InstanceTrack:
    num_frames = len(centers)
    return InstanceTrack(
        label=0,
        outline=outline,
        texture=np.full((64, 64, 3), 200.0, np.float32),
        centers=np.array(centers, np.float64),
        radii=np.full(num_frames, radius),
        angles=np.zeros(num_frames),
        present=np.ones(num_frames, bool),
        **kwargs)


def _render(track: InstanceTrack, motion_blur: float = 0.0):
    """Render one object on a black, noiseless 64 x 72 background."""
    num_frames = len(track.centers)
    scene = VideoScene(
        height=64,
        width=72,
        num_frames=num_frames,
        background=np.zeros((66, 74, 3), np.float32),
        camera=np.ones((num_frames, 2), np.int64),
        noise_std=0.0,
        instances=[track],
        motion_blur=motion_blur)
    return render_scene(scene, np.random.default_rng(0))


# an axis-aligned square of half side 0.7 (corners inside the unit disc)
SQUARE = Outline(
    np.array([[-0.7, -0.7], [0.7, -0.7], [0.7, 0.7], [-0.7, 0.7]]))


def test_motion_blur_smears_along_the_motion():
    # 8 px per frame to the right; half side 0.7 * 16 = 11.2 px, so in
    # frame 1 the square spans x in [20.8, 43.2] around (32, 32)
    track = _flat_track(SQUARE, [[24, 32], [32, 32], [40, 32]], 16.0)
    sharp, blurred = _render(track), _render(track, motion_blur=1.0)
    # the masks are the unblurred shape
    assert np.array_equal(sharp.amodal, blurred.amodal)
    mask = blurred.amodal[1, 0]

    def ramp_pixels(profile):
        return int(((profile > 20) & (profile < 180)).sum())

    row = blurred.frames[1, 32, :, 0].astype(float)
    column = blurred.frames[1, :, 32, 0].astype(float)
    # a box blur of 8 px turns each vertical edge into a linear ramp 8 px
    # wide, of which 80% lies between 10% and 90% of the contrast: about
    # 6.4 px per edge; across the motion the edges stay steps
    assert ramp_pixels(row) >= 10
    assert ramp_pixels(column) == 0
    assert ramp_pixels(sharp.frames[1, 32, :, 0].astype(float)) == 0
    # the mask ends where the smeared object is half opaque: the first
    # pixel centre inside, x = 21, sees (21 + 4 - 20.8) / 8 = 52% of it
    xs = np.nonzero(mask[32])[0]
    assert 0.35 < row[xs[0]] / 200 < 0.65
    assert 0.35 < row[xs[-1]] / 200 < 0.65


def test_texture_blends_over_the_video():
    track = _flat_track(
        SQUARE, [[32, 32]] * 3,
        16.0,
        texture_end=np.full((64, 64, 3), 50.0, np.float32))
    video = _render(track)
    mask = video.amodal[:, 0]
    # linear from 200 to 50: the middle frame is half way
    for t, colour in enumerate((200, 125, 50)):
        assert (video.frames[t][mask[t]] == colour).all()


def test_shape_stretch_changes_the_aspect():
    angles = np.linspace(0.0, 2 * np.pi, 48, endpoint=False)
    disc = Outline(np.stack([np.cos(angles), np.sin(angles)], axis=1))
    track = _flat_track(
        disc, [[36, 32]] * 2, 10.0, stretches=np.array([0.0, np.log(4.0)]))
    masks = _render(track).amodal[:, 0]
    ys, xs = np.nonzero(masks[1])
    # axes of 10 * 2 and 10 / 2 px: a 40 x 10 ellipse of the disc's area,
    # while scaling (scale_rate) keeps the aspect
    aspect = (np.ptp(xs) + 1) / (np.ptp(ys) + 1)
    assert 3.5 < aspect < 4.5
    assert 0.9 < masks[1].sum() / masks[0].sum() < 1.1


def test_sampled_hardness_settings():
    hard = dataclasses.replace(
        BUSY, texture_change_prob=1.0, shape_stretch=0.8, motion_blur=0.5)
    for index in range(2):
        scene = _scene(hard, 'train', index)
        assert scene.motion_blur == 0.5
        for inst in scene.instances:
            assert inst.texture_end is not None
            assert not np.array_equal(inst.texture_end, inst.texture)
            assert inst.stretches[0] == 0.0
            assert np.abs(inst.stretches).max() <= 0.8
            # linear in time
            assert np.allclose(np.diff(inst.stretches, 2), 0.0)
        default = _scene(BUSY, 'train', index)
        for inst in default.instances:
            assert inst.texture_end is None and not inst.stretches.any()


def test_texture_change_in_generated_videos():
    # one flat-coloured object, no noise: without texture change its colour
    # stays; with it the end colour is drawn anew, and two uniform colours
    # in the RGB cube lie about 0.66 * 255 = 170 apart on average
    flat = dataclasses.replace(
        BUSY,
        num_instances=(1, 1),
        object_textures=('solid', ),
        object_texture_contrast=(0.0, 0.0),
        noise_std=(0.0, 0.0),
        min_contrast=0.0)

    def colour_change(settings, index):
        video = make_video(settings, 'train', index)
        first, last = (
            video.frames[t][video.visible[t, 0]].mean(0) for t in (0, -1))
        return float(np.linalg.norm(first - last))

    changing = dataclasses.replace(flat, texture_change_prob=1.0)
    assert max(colour_change(flat, i) for i in range(4)) < 1.0
    assert np.mean([colour_change(changing, i) for i in range(4)]) > 40.0


def test_motion_blur_keeps_the_masks():
    blurred = dataclasses.replace(BUSY, motion_blur=1.0)
    for index in range(2):
        sharp, smeared = (
            make_video(s, 'train', index) for s in (BUSY, blurred))
        assert np.array_equal(sharp.visible, smeared.visible)
        assert not np.array_equal(sharp.frames, smeared.frames)


def test_cli_documents_the_settings(capsys):
    spec = importlib.util.spec_from_file_location(
        'generate_synthetic_vis',
        osp.join(REPO, 'tools', 'misc', 'generate_synthetic_vis.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(SystemExit) as exit_info:
        module.parse_args(['--help'])
    assert exit_info.value.code == 0
    text = ' '.join(capsys.readouterr().out.split())
    # the help is the attribute docs, percent signs included
    assert 'opacity is 50%' in text
    args = module.parse_args(['--reentry-gap', '0.1', '0.2'])
    assert args.reentry_gap == [0.1, 0.2] and args.motion_blur == 0.0


@pytest.mark.parametrize('name,value', [
    ('reentry_prob', 1.5),
    ('reentry_prob', -0.1),
    ('reentry_gap', (0.3, 0.2)),
    ('reentry_gap', (0.5, 1.0)),
    ('reentry_gap', (-0.1, 0.2)),
    ('texture_change_prob', 2.0),
    ('shape_stretch', -1.0),
    ('shape_stretch', 3.0),
    ('motion_blur', -0.5),
    ('motion_blur', 1.5),
])
def test_bad_values_name_the_setting(name, value):
    with pytest.raises(ValueError, match=name):
        SyntheticVISSettings(**{name: value})
