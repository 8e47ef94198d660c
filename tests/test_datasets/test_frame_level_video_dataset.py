import pytest
from mmdet.datasets import CocoDataset
from mmdet.datasets.samplers import TrackAspectRatioBatchSampler
from mmengine.dataset import DefaultSampler

from mmvis_msts.datasets import FrameLevelVideoDataset


def report(results):
    """Pipeline stand-in: which video and anchor the dataset asked for."""
    return (results['video_id'], results.get('key_frame_id'))


def video_dataset(root, ann_file, test_mode=False):
    return dict(
        type='YouTubeVISDataset',
        dataset_version='2019',
        data_root=root,
        ann_file=ann_file,
        data_prefix=dict(img_path='train/JPEGImages'),
        test_mode=test_mode,
        pipeline=[report])


def test_one_sample_per_frame(tmp_path, make_vis_dataset):
    ann = make_vis_dataset(
        str(tmp_path), [('a', 3), ('b', 1), ('c', 2)], ['person', 'sedan'])
    dataset = FrameLevelVideoDataset(video_dataset(str(tmp_path), ann))
    assert len(dataset) == 6
    assert [dataset.locate(i) for i in range(6)] == [(0, 0), (0, 1), (0, 2),
                                                     (1, 0), (2, 0), (2, 1)]
    assert [dataset[i] for i in range(6)] == [(1, 0), (1, 1), (1, 2), (2, 0),
                                              (3, 0), (3, 1)]
    info = dataset.get_data_info(4)
    assert info['video_id'] == 3 and info['key_frame_id'] == 0
    assert dataset.metainfo['classes'][0] == 'person'
    with pytest.raises(IndexError, match='index 6'):
        dataset.locate(6)


def test_works_with_mmdet_samplers(tmp_path, make_vis_dataset):
    ann = make_vis_dataset(
        str(tmp_path), [('a', 3), ('b', 2)], ['person', 'sedan'])
    dataset = FrameLevelVideoDataset(video_dataset(str(tmp_path), ann))
    sampler = DefaultSampler(dataset, shuffle=True, seed=0)
    batches = list(TrackAspectRatioBatchSampler(sampler, batch_size=2))
    assert sorted(i for batch in batches for i in batch) == [0, 1, 2, 3, 4]


def test_lazy_init(tmp_path, make_vis_dataset):
    ann = make_vis_dataset(str(tmp_path), [('a', 2)], ['person', 'sedan'])
    dataset = FrameLevelVideoDataset(
        video_dataset(str(tmp_path), ann), lazy_init=True)
    assert dataset[1] == (1, 1)
    assert len(dataset) == 2


def test_rejects_test_and_image_datasets(tmp_path, make_vis_dataset,
                                         make_coco_dataset):
    ann = make_vis_dataset(str(tmp_path), [('a', 2)], ['person', 'sedan'])
    with pytest.raises(ValueError, match='training'):
        FrameLevelVideoDataset(
            video_dataset(str(tmp_path), ann, test_mode=True))
    coco = CocoDataset(
        ann_file=make_coco_dataset(str(tmp_path / 'coco'), ['a', 'b']),
        data_prefix=dict(img='train2017'),
        pipeline=[])
    with pytest.raises(TypeError, match='CocoDataset'):
        FrameLevelVideoDataset(coco)
