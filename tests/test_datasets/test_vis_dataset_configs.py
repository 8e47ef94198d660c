"""The dataset configs: recipe values, and their pipelines on tiny data."""
import os.path as osp
import random

import numpy as np
import pytest
from mmdet.registry import DATASETS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.runner import Runner

from mmvis_msts.datasets import OVISDataset
from mmvis_msts.datasets.converters import vis_classes

REPO = osp.dirname(osp.dirname(osp.dirname(__file__)))
CONFIGS = osp.join(REPO, 'configs', '_base_', 'datasets')


def load(name):
    return Config.fromfile(osp.join(CONFIGS, name))


@pytest.fixture(autouse=True)
def seeded():
    register_all_modules(init_default_scope=True)
    random.seed(0)
    np.random.seed(0)


@pytest.mark.parametrize('name, version, prefix', [
    ('youtube_vis_2019.py', '2019', 'train/JPEGImages'),
    ('youtube_vis_2021.py', '2021', 'train/JPEGImages'),
    ('ovis.py', 'ovis', 'train/'),
])
def test_recipe_values(name, version, prefix):
    cfg = load(name)
    # Bases leave custom_imports to the runnable configs (mmengine forbids
    # a key in two bases of one config).
    assert 'custom_imports' not in cfg
    train = cfg.train_dataloader
    assert train.dataset.type == 'FrameLevelVideoDataset'
    inner = train.dataset.dataset
    assert inner.dataset_version == version
    assert inner.data_prefix.img_path == prefix
    if version != 'ovis':
        assert inner.ann_file == (
            f'annotations/youtube_vis_{version}_train.json')
        assert inner.data_root == f'data/youtube_vis_{version}/'
    sampler, broadcast = inner.pipeline[0], inner.pipeline[1]
    assert sampler.type == 'SeqFormerClipSample' and sampler.num_frames == 5
    assert sampler.local_range == (1, 3)
    assert broadcast.share_random_params
    steps = [t.type for t in broadcast.transforms]
    assert steps == [
        'LoadImageFromFile', 'LoadTrackAnnotations', 'RandomFlip',
        'PhotoMetricDistortion', 'SharedRandomChoice'
    ]
    plain, crop = broadcast.transforms[4].transforms
    assert [s[1] for s in plain[0].scales
            ] == [288, 320, 352, 392, 416, 448, 480, 512]
    assert {s[0] for s in plain[0].scales} == {768}
    assert crop[1].crop_size == (384, 600)
    assert [t.type for t in inner.pipeline[2:]
            ] == ['DropEmptyClip', 'PackTrackInputs']
    val = cfg.val_dataloader
    assert val.batch_size == 1 and val.dataset.test_mode
    assert val.sampler == dict(
        type='DefaultSampler', shuffle=False, round_up=False)
    resize = val.dataset.pipeline[0].transforms[1]
    assert resize.scale[1] == 360 and resize.keep_ratio
    assert cfg.test_dataloader == cfg.val_dataloader
    assert cfg.val_evaluator.type == 'VISMetric'
    assert cfg.val_evaluator.format_only
    assert cfg.val_evaluator.outfile_prefix.endswith(
        'ovis' if version == 'ovis' else f'youtube_vis_{version}')


def _point_video_dataset(dataset_cfg, root, ann_file):
    dataset_cfg.data_root = root
    dataset_cfg.ann_file = ann_file
    return dataset_cfg


def _loader(loader_cfg):
    loader_cfg.num_workers = 0
    loader_cfg.persistent_workers = False
    return Runner.build_dataloader(loader_cfg, seed=0)


def _check_clip(packed, num_frames=5):
    inputs, sample = packed['inputs'], packed['data_samples']
    assert inputs.shape[:2] == (num_frames, 3)
    frames = sample.video_data_samples
    assert len(frames) == num_frames
    assert len(sample.key_frames_inds) == 1
    for frame in frames:
        assert frame.img_shape == tuple(inputs.shape[2:])
        ids = frame.gt_instances.instances_ids
        assert len(ids) == len(frame.gt_instances.labels)
        assert frame.gt_instances.masks.masks.shape[1:] == inputs.shape[2:]
    return frames


def test_youtube_vis_train_and_test_pipelines(tmp_path, make_vis_dataset):
    # all 40 categories in the json (the build-time checks refuse a file
    # that lacks some: labels would shift); the objects are classes 1 and 2
    classes = vis_classes('2019')
    root = str(tmp_path)
    train_ann = make_vis_dataset(root, [('a', 8), ('b', 6)], classes)
    cfg = load('youtube_vis_2019.py')
    _point_video_dataset(cfg.train_dataloader.dataset.dataset, root, train_ann)
    loader = _loader(cfg.train_dataloader)
    assert len(loader.dataset) == 14
    for batch, _ in zip(loader, range(3)):
        frames = _check_clip(
            dict(
                inputs=batch['inputs'][0],
                data_samples=batch['data_samples'][0]))
        frame_ids = [f.frame_id for f in frames]
        assert frame_ids == sorted(frame_ids)
        short = min(batch['inputs'][0].shape[2:])
        assert short <= 512
        labels = {int(x) for f in frames for x in f.gt_instances.labels}
        assert labels <= {0, 1}

    valid_ann = make_vis_dataset(
        root, [('a', 4)], classes, split='valid', annotate=False)
    val_cfg = _point_video_dataset(cfg.val_dataloader.dataset, root, valid_ann)
    packed = DATASETS.build(val_cfg)[0]
    assert packed['inputs'].shape == (4, 3, 360, 480)
    frames = packed['data_samples'].video_data_samples
    assert [f.ori_shape for f in frames] == [(48, 64)] * 4
    assert [f.frame_id for f in frames] == [0, 1, 2, 3]


def test_ovis_train_pipeline(tmp_path, make_vis_dataset):
    root = str(tmp_path)
    ann = make_vis_dataset(root, [('a', 7)], OVISDataset.METAINFO['classes'])
    cfg = load('ovis.py')
    dataset_cfg = _point_video_dataset(cfg.train_dataloader.dataset.dataset,
                                       root, ann)
    dataset_cfg.data_prefix = dict(img_path='train/JPEGImages')
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert dataset.metainfo['classes'] == OVISDataset.METAINFO['classes']
    _check_clip(dataset[3])


def test_coco_joint_config(tmp_path, make_vis_dataset, make_coco_dataset):
    classes = vis_classes('2019')
    root = str(tmp_path)
    video_ann = make_vis_dataset(root, [('a', 6)], classes)
    coco_ann = make_coco_dataset(str(tmp_path / 'coco'), classes)
    cfg = load('coco_joint_youtube_vis_2019.py')
    loader_cfg = cfg.train_dataloader
    assert loader_cfg.batch_sampler is None
    video_cfg, coco_cfg = loader_cfg.dataset.datasets
    assert video_cfg.type == 'FrameLevelVideoDataset'
    assert coco_cfg.metainfo.classes == classes
    assert [t.type for t in coco_cfg.pipeline] == [
        'LoadImageFromFile', 'LoadAnnotations', 'ImageToPseudoVideo',
        'TransformBroadcaster', 'DropEmptyClip', 'PackTrackInputs'
    ]
    _point_video_dataset(video_cfg.dataset, root, video_ann)
    coco_cfg.data_root = str(tmp_path / 'coco')
    coco_cfg.ann_file = coco_ann
    loader = _loader(loader_cfg)
    dataset = loader.dataset
    assert len(dataset) == 6 + 2
    assert dataset.metainfo['classes'] == classes
    # The COCO image with two instances (person and giant_panda).
    frames = _check_clip(dataset[6])
    for frame in frames:
        assert set(frame.gt_instances.instances_ids.tolist()) <= {0, 1}
        labels = dict(
            zip(frame.gt_instances.instances_ids.tolist(),
                frame.gt_instances.labels.tolist()))
        assert all(labels[i] == i for i in labels)
    _check_clip(dataset[0])
    batch = next(iter(loader))
    assert batch['inputs'][0].shape[:2] == (5, 3)
