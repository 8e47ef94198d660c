import os.path as osp

import pytest
from mmdet.datasets import YouTubeVISDataset

from mmvis_msts.datasets import OVISDataset

YTVIS_2019_FIRST = ('person', 'giant_panda', 'lizard')


def build(cls, root, ann_file, **kwargs):
    return cls(
        data_root=root,
        ann_file=ann_file,
        data_prefix=dict(img_path='train/JPEGImages'),
        pipeline=[],
        **kwargs)


def test_ovis_dataset_loads_its_25_classes(tmp_path, make_vis_dataset):
    classes = OVISDataset.METAINFO['classes']
    assert len(classes) == 25 and classes[0] == 'Person'
    assert classes[-1] == 'Vehical'  # the official spelling
    ann = make_vis_dataset(
        str(tmp_path), [('a', 3), ('b', 2)], classes=classes)
    dataset = build(OVISDataset, str(tmp_path), ann)
    assert dataset.metainfo['classes'] == classes
    assert len(dataset) == 2
    video = dataset.get_data_info(0)
    assert video['video_length'] == 3
    frame = video['images'][1]
    assert frame['img_path'] == osp.join(
        str(tmp_path), 'train/JPEGImages', 'a/00001.jpg')
    # Category ids 1 and 2 are Person and Bird: labels 0 and 1.
    assert [inst['bbox_label'] for inst in frame['instances']] == [0, 1]
    assert [inst['instance_id'] for inst in frame['instances']] == [11, 12]
    assert frame['instances'][0]['bbox'] == [6, 6, 18, 16]


def test_youtube_vis_classes_are_untouched(tmp_path, make_vis_dataset):
    ytvis = build(
        YouTubeVISDataset,
        str(tmp_path),
        make_vis_dataset(
            str(tmp_path / 'y'), [('a', 2)], ['person', 'sedan'],
            split='train'),
        dataset_version='2019')
    assert ytvis.metainfo['classes'][:3] == YTVIS_2019_FIRST
    ovis_ann = make_vis_dataset(
        str(tmp_path / 'o'), [('a', 2)], OVISDataset.METAINFO['classes'])
    build(OVISDataset, str(tmp_path / 'o'), ovis_ann)
    # Neither the class attribute nor a new YouTube-VIS dataset changed.
    assert YouTubeVISDataset.METAINFO['classes'][:3] == YTVIS_2019_FIRST
    assert len(YouTubeVISDataset.METAINFO['classes']) == 40
    again = build(
        YouTubeVISDataset,
        str(tmp_path),
        osp.join(str(tmp_path / 'y'), 'annotations', 'train.json'),
        dataset_version='2021')
    assert len(again.metainfo['classes']) == 40
    assert OVISDataset.METAINFO['classes'][0] == 'Person'
    assert len(OVISDataset.METAINFO['classes']) == 25


def test_unknown_version_is_rejected(tmp_path, make_vis_dataset):
    ann = make_vis_dataset(str(tmp_path), [('a', 1)], ['Person'])
    with pytest.raises(NotImplementedError, match="'2019'"):
        build(OVISDataset, str(tmp_path), ann, dataset_version='2019')
