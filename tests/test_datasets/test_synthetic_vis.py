"""Tests of the synthetic VIS generator, its CLI, dataset class and config."""
import dataclasses
import filecmp
import importlib.util
import json
import os
import os.path as osp
from collections import defaultdict

import cv2
import numpy as np
import pycocotools.mask as mask_utils
import pytest
from mmdet.datasets import YouTubeVISDataset
from mmdet.registry import DATASETS
from mmdet.utils import register_all_modules
from mmengine.config import Config

from mmvis_msts.datasets import SyntheticVISDataset
from mmvis_msts.datasets.synthetic import (DEFAULT_CLASSES, META_FILE,
                                           InstanceTrack, SyntheticVISSettings,
                                           VideoScene, generate_dataset,
                                           make_video, render_scene,
                                           video_annotations)
from mmvis_msts.datasets.synthetic.shapes import circle, square

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = SyntheticVISSettings(
    seed=7,
    num_train=4,
    num_val=2,
    num_frames=(3, 6),
    frame_height=(48, 56),
    num_instances=(2, 3),
    occlusion_prob=1.0)


@pytest.fixture(scope='module')
def tiny_root(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp('synthetic_vis'))
    assert generate_dataset(TINY, root, progress=False)
    return root


def _load(root: str, split: str) -> dict:
    with open(osp.join(root, 'annotations', f'{split}.json')) as f:
        return json.load(f)


def _all_files(root: str) -> list:
    return sorted(
        osp.relpath(osp.join(d, n), root) for d, _, names in os.walk(root)
        for n in names)


def _run_cli(argv: list) -> int:
    spec = importlib.util.spec_from_file_location(
        'generate_synthetic_vis',
        osp.join(REPO, 'tools', 'misc', 'generate_synthetic_vis.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


def test_settings_documented_and_checked():
    docs = SyntheticVISSettings.field_docs()
    names = [f.name for f in dataclasses.fields(SyntheticVISSettings)]
    assert sorted(docs) == sorted(names)
    for name in names:
        assert 'Defaults to' in docs[name], name
    with pytest.raises(ValueError, match='hexagon'):
        SyntheticVISSettings(classes=('circle', 'hexagon'))
    with pytest.raises(ValueError, match='num_frames'):
        SyntheticVISSettings(num_frames=(6, 3))
    with pytest.raises(ValueError, match='size_divisor'):
        SyntheticVISSettings(frame_height=(65, 70))
    with pytest.raises(ValueError, match='jpeg_quality'):
        SyntheticVISSettings(jpeg_quality=0)
    # lists (from json or argparse) compare equal to the tuple defaults
    assert SyntheticVISSettings(classes=list(DEFAULT_CLASSES)) == \
        SyntheticVISSettings()


def test_json_format_and_persistent_ids(tiny_root):
    instance_video, instance_cat = {}, {}
    frames_of_instance = defaultdict(int)
    for split, num_videos in (('train', 4), ('val', 2)):
        data = _load(tiny_root, split)
        assert data['categories'] == [
            dict(id=i + 1, name=n) for i, n in enumerate(DEFAULT_CLASSES)
        ]
        assert [v['id']
                for v in data['videos']] == list(range(1, num_videos + 1))
        videos = {v['id']: v for v in data['videos']}
        images = {img['id']: img for img in data['images']}
        assert len(images) == len(data['images'])
        frames_per_video = defaultdict(list)
        for img in data['images']:
            video = videos[img['video_id']]
            assert (img['height'], img['width']) == (video['height'],
                                                     video['width'])
            assert img['file_name'] == \
                f"{video['name']}/{img['frame_id']:05d}.jpg"
            frame = cv2.imread(
                osp.join(tiny_root, split, 'JPEGImages', img['file_name']))
            assert frame.shape == (img['height'], img['width'], 3)
            frames_per_video[img['video_id']].append(img['frame_id'])
        for video_id, frame_ids in frames_per_video.items():
            assert frame_ids == list(range(len(frame_ids)))
            assert 3 <= len(frame_ids) <= 6
            assert 48 <= videos[video_id]['height'] <= 56

        ann_ids = [a['id'] for a in data['annotations']]
        assert len(set(ann_ids)) == len(ann_ids)
        seen = set()
        for ann in data['annotations']:
            img = images[ann['image_id']]
            assert ann['video_id'] == img['video_id']
            assert ann['iscrowd'] == 0
            assert isinstance(ann['segmentation']['counts'], str)
            mask = mask_utils.decode(ann['segmentation'])
            assert mask.shape == (img['height'], img['width'])
            assert ann['area'] == mask.sum() > 0
            ys, xs = np.nonzero(mask)
            assert ann['bbox'] == [
                xs.min(),
                ys.min(),
                xs.max() - xs.min() + 1,
                ys.max() - ys.min() + 1
            ]
            # one annotation per instance and frame
            assert (ann['instance_id'], ann['image_id']) not in seen
            seen.add((ann['instance_id'], ann['image_id']))
            # ids start at 1 (mmdet reads instance_id 0 as missing) and
            # each stays within one video and one class
            key = (split, ann['instance_id'])
            assert ann['instance_id'] >= 1
            assert instance_video.setdefault(key, ann['video_id']) == \
                ann['video_id']
            assert instance_cat.setdefault(key, ann['category_id']) == \
                ann['category_id']
            frames_of_instance[key] += 1
    # instances persist over frames
    assert max(frames_of_instance.values()) >= 3


def test_masks_lie_on_the_drawn_objects(tmp_path):
    # plain colours and no noise, so an object is one flat colour that
    # differs from the background
    settings = dataclasses.replace(
        TINY,
        object_textures=('solid', ),
        background_textures=('solid', ),
        object_texture_contrast=(0.0, 10.0),
        background_texture_contrast=(0.0, 10.0),
        background_clutter=0,
        noise_std=(0.0, 0.0),
        min_contrast=90.0,
        jpeg_quality=95)
    generate_dataset(settings, str(tmp_path), progress=False)
    data = _load(str(tmp_path), 'train')
    images = {img['id']: img for img in data['images']}
    anns_of = defaultdict(list)
    for ann in data['annotations']:
        anns_of[ann['image_id']].append(ann)
    # JPEG blurs colours up to 2 px across edges (chroma subsampling)
    kernel = np.ones((5, 5), np.uint8)
    checked = 0
    for image_id, anns in anns_of.items():
        frame = cv2.imread(
            osp.join(
                str(tmp_path), 'train', 'JPEGImages',
                images[image_id]['file_name'])).astype(np.float32)
        masks = [mask_utils.decode(a['segmentation']) for a in anns]
        background = cv2.erode((sum(masks) == 0).astype(np.uint8),
                               kernel).astype(bool)
        bg_colour = np.median(frame[background], axis=0)
        for mask in masks:
            inner = cv2.erode(mask, kernel).astype(bool)
            if inner.sum() < 10:
                continue
            pixels = frame[inner]
            colour = np.median(pixels, axis=0)
            assert np.linalg.norm(colour - bg_colour) > 40
            # the mask covers a single flat object: nearly all its pixels
            # are close to one colour (a hidden part left in the mask would
            # show the colour of the object in front)
            close = np.linalg.norm(pixels - colour, axis=1) < 25
            assert close.mean() > 0.9
            checked += 1
    assert checked >= 10

    # the json masks are exactly the renderer's visible masks, and the
    # written frames are the rendered ones up to JPEG loss
    video = make_video(settings, 'train', 1)
    expected = [a['segmentation'] for a in video_annotations(video)]
    assert expected == [
        a['segmentation'] for a in data['annotations'] if a['video_id'] == 2
    ]
    for img in data['images']:
        if img['video_id'] == 2:
            written = cv2.imread(
                osp.join(
                    str(tmp_path), 'train', 'JPEGImages', img['file_name']))
            diff = written.astype(int) - video.frames[img['frame_id']]
            assert np.abs(diff).mean() < 3


def _track(outline, label, centers, radius, present=(True, True)):
    texture = np.full((64, 64, 3), 60.0 * (label + 1), np.float32)
    return InstanceTrack(
        label=label,
        outline=outline,
        texture=texture,
        centers=np.array(centers, np.float64),
        radii=np.full(len(centers), radius),
        angles=np.zeros(len(centers)),
        present=np.array(present))


def test_occlusion_removes_hidden_pixels():
    rng = np.random.default_rng(0)
    back = _track(circle(rng), 0, [[20, 24], [32, 24]], 8.0)
    # a big square in front: it half covers the circle in frame 0 and
    # hides it completely in frame 1
    front = _track(square(rng), 2, [[34, 24], [32, 24]], 16.0)
    scene = VideoScene(
        height=48,
        width=64,
        num_frames=2,
        background=np.zeros((50, 66, 3), np.float32),
        camera=np.ones((2, 2), np.int64),
        noise_std=0.0,
        instances=[back, front])
    video = render_scene(scene, rng)
    amodal_area = video.amodal.sum(axis=(2, 3))
    visible_area = video.visible.sum(axis=(2, 3))
    assert (amodal_area > 0).all()
    assert 0 < visible_area[0, 0] < amodal_area[0, 0]
    assert visible_area[1, 0] == 0
    assert np.array_equal(video.visible[:, 1], video.amodal[:, 1])
    assert not (video.visible[:, 0] & video.visible[:, 1]).any()
    # painted pixels follow the depth order
    assert (video.frames[0][video.visible[0, 0]] == 60).all()
    assert (video.frames[video.visible[:, 1]] == 180).all()
    anns = video_annotations(video)
    # the fully hidden circle gets no annotation in frame 1
    pairs = [(a['frame'], a['instance']) for a in anns]
    assert pairs == [(0, 0), (0, 1), (1, 1)]
    assert anns[0]['area'] == visible_area[0, 0]


def test_occlusion_happens_in_generated_videos():
    shrunk = 0
    for index in range(4):
        video = make_video(TINY, 'train', index)
        assert not (video.visible & ~video.amodal).any()
        # visible masks of one frame are disjoint
        assert (video.visible.sum(axis=1) <= 1).all()
        shrunk += int((video.visible.sum(axis=(2, 3))
                       < video.amodal.sum(axis=(2, 3))).sum())
    assert shrunk > 0


def test_deterministic_by_seed(tiny_root, tmp_path):
    again = str(tmp_path / 'again')
    # another worker count gives the same bytes
    generate_dataset(TINY, again, workers=2, progress=False)
    files = _all_files(tiny_root)
    assert files == _all_files(again)
    match, mismatch, errors = filecmp.cmpfiles(
        tiny_root, again, files, shallow=False)
    assert not mismatch and not errors and len(match) == len(files)

    other = str(tmp_path / 'other')
    generate_dataset(
        dataclasses.replace(TINY, seed=8, num_val=0), other, progress=False)
    assert _load(other, 'train') != _load(tiny_root, 'train')
    # train and val draw from different seed streams
    train0 = make_video(TINY, 'train', 0)
    val0 = make_video(TINY, 'val', 0)
    assert train0.frames.shape != val0.frames.shape or \
        not np.array_equal(train0.frames, val0.frames)


def test_dataset_class(tiny_root):
    before = YouTubeVISDataset.__dict__.get('METAINFO')
    common = dict(data_root=tiny_root, pipeline=[])
    train = SyntheticVISDataset(
        ann_file='annotations/train.json',
        data_prefix=dict(img_path='train/JPEGImages'),
        **common)
    val = SyntheticVISDataset(
        ann_file='annotations/val.json',
        data_prefix=dict(img_path='val/JPEGImages'),
        test_mode=True,
        **common)
    assert YouTubeVISDataset.__dict__.get('METAINFO') == before
    assert train.metainfo['classes'] == DEFAULT_CLASSES
    assert (len(train), len(val)) == (4, 2)
    raw_val = _load(tiny_root, 'val')
    assert val.num_all_imgs == len(raw_val['images'])
    raw_train = _load(tiny_root, 'train')
    with_gt = {a['image_id'] for a in raw_train['annotations']}
    # training drops frames without ground truth, nothing else
    assert train.num_all_imgs == len(with_gt)
    video = train.get_data_info(0)
    labels = {
        a['instance_id']: a['category_id'] - 1
        for a in raw_train['annotations']
    }
    for frame in video['images']:
        assert frame['img_path'].startswith(
            osp.join(tiny_root, 'train', 'JPEGImages'))
        for inst in frame['instances']:
            assert inst['bbox_label'] == labels[inst['instance_id']]

    with pytest.raises(ValueError, match='2019'):
        SyntheticVISDataset(
            ann_file='annotations/val.json', dataset_version='2019', **common)
    with pytest.raises(ValueError, match='ring'):
        SyntheticVISDataset(
            ann_file='annotations/val.json',
            metainfo=dict(classes=('circle', 'ring')),
            **common)


def test_cli_is_idempotent(tmp_path, capsys):
    out = str(tmp_path / 'data')
    tiny = [
        '--out', out, '--no-progress', '--num-train', '2', '--num-val', '1',
        '--num-frames', '2', '3', '--frame-height', '48', '48', '--seed', '1'
    ]
    assert _run_cli(tiny) == 0
    ann_file = osp.join(out, 'annotations', 'train.json')
    stamp = os.stat(ann_file).st_mtime_ns
    with open(osp.join(out, META_FILE)) as f:
        assert json.load(f)['settings']['num_frames'] == [2, 3]

    capsys.readouterr()
    assert _run_cli(tiny + ['--preview']) == 0
    assert 'nothing to do' in capsys.readouterr().out
    assert os.stat(ann_file).st_mtime_ns == stamp
    preview = cv2.imread(osp.join(out, 'preview.png'))
    assert preview is not None and preview.shape[0] >= 2 * 48

    changed = tiny[:-1] + ['2']
    assert _run_cli(changed) == 1
    err = capsys.readouterr().err
    assert 'seed' in err and '--force' in err
    assert _run_cli(changed + ['--force']) == 0
    assert not osp.exists(osp.join(out, 'preview.png'))
    with open(osp.join(out, META_FILE)) as f:
        assert json.load(f)['settings']['seed'] == 2

    assert _run_cli(tiny + ['--jpeg-quality', '0', '--force']) == 1
    assert 'jpeg_quality' in capsys.readouterr().err


def test_base_config_pipeline(tiny_root):
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'datasets', 'synthetic_vis.py'))
    assert cfg.val_evaluator.type in ('VISMetric', 'YouTubeVISMetric')
    assert cfg.val_evaluator.format_only is False

    train_cfg = cfg.train_dataloader.dataset
    train_cfg.data_root = tiny_root
    train = DATASETS.build(train_cfg)
    sample = train[0]
    inputs, track = sample['inputs'], sample['data_samples']
    t = cfg.num_clip_frames
    assert inputs.shape[:2] == (t, 3) and len(track) == t
    height, width = inputs.shape[2:]
    assert height <= 80 and width <= 128
    assert max(height, width) == 128 or min(height, width) == 80
    for frame in track:
        gt = frame.gt_instances
        assert gt.masks.masks.shape[1:] == (height, width)
        assert len(gt.labels) == len(gt.instances_ids) == len(gt.masks)
    assert len(track.key_frames_inds) == 1

    val_cfg = cfg.val_dataloader.dataset
    val_cfg.data_root = tiny_root
    val = DATASETS.build(val_cfg)
    sample = val[1]
    num_frames = len(val.get_data_info(1)['images'])
    assert sample['inputs'].shape[0] == num_frames
    first = sample['data_samples'][0]
    assert first.ori_video_length == num_frames
    assert first.ori_shape == (val.get_data_info(1)['images'][0]['height'],
                               val.get_data_info(1)['images'][0]['width'])
