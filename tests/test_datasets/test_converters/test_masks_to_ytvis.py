import json
import os
import os.path as osp

import numpy as np
import pytest
from converter_cli import load_cli
from mmdet.datasets import YouTubeVISDataset
from PIL import Image
from pycocotools import mask as mask_utils

from mmvis_msts.datasets.converters import (convert_frame_videos,
                                            convert_mask_videos,
                                            load_class_map, read_id_mask)

H, W = 16, 12
CATEGORIES = ['cat', 'dog', 'bird']


def rect(ids, value, x, y, w, h):
    ids[y:y + h, x:x + w] = value


def save_indexed(path, ids):
    image = Image.fromarray(ids.astype(np.uint8))
    # A DAVIS-style palette: index i -> some colour; pixel values stay ids.
    image.putpalette([(i * 37) % 256 for i in range(768)])
    assert image.mode == 'P'
    image.save(path)


def save_16bit(path, ids):
    image = Image.fromarray(ids.astype(np.uint16))
    image.save(path)


def save_jpg(path, size=(H, W)):
    Image.fromarray(np.full(size + (3, ), 90, np.uint8)).save(path)


@pytest.fixture
def mask_videos(tmp_path):
    """vid_a: two indexed PNG frames; vid_b: one 16-bit PNG frame."""
    masks, images = tmp_path / 'masks', tmp_path / 'images'
    for video in ('vid_a', 'vid_b'):
        (masks / video).mkdir(parents=True)
        (images / video).mkdir(parents=True)
    frame0 = np.zeros((H, W), np.int64)
    rect(frame0, 255, 0, 0, 5, 2)  # ignored pixels
    rect(frame0, 1, 3, 2, 6, 4)
    rect(frame0, 2, 1, 10, 2, 3)
    frame1 = np.zeros((H, W), np.int64)
    rect(frame1, 1, 5, 2, 6, 4)
    save_indexed(masks / 'vid_a' / '00000.png', frame0)
    save_indexed(masks / 'vid_a' / '00001.png', frame1)
    frame_b = np.zeros((H, W), np.int64)
    rect(frame_b, 300, 0, 0, 3, 2)
    rect(frame_b, 1000, 4, 6, 5, 7)
    rect(frame_b, 255, 10, 14, 2, 2)
    save_16bit(masks / 'vid_b' / '00000.png', frame_b)
    for name in ('vid_a/00000', 'vid_a/00001', 'vid_b/00000'):
        save_jpg(images / f'{name}.jpg')
    class_map = dict(
        categories=CATEGORIES,
        videos={
            'vid_a': {
                '1': 'cat',
                '2': 'dog'
            },
            'vid_b': {
                '300': 'bird'
            },
            '*': {
                '1000': 'dog'
            }
        })
    class_map_path = tmp_path / 'classes.json'
    class_map_path.write_text(json.dumps(class_map))
    return dict(
        root=tmp_path,
        masks=str(masks),
        images=str(images),
        class_map=str(class_map_path),
        ids={
            ('vid_a', 0): frame0,
            ('vid_a', 1): frame1,
            ('vid_b', 0): frame_b
        })


def convert(fixture, **kwargs):
    return convert_mask_videos(fixture['masks'], fixture['images'],
                               fixture['class_map'], **kwargs)


def test_read_id_mask_keeps_ids(mask_videos):
    ids = read_id_mask(osp.join(mask_videos['masks'], 'vid_b', '00000.png'))
    assert ids.dtype == np.int64
    np.testing.assert_array_equal(ids, mask_videos['ids'][('vid_b', 0)])
    ids = read_id_mask(osp.join(mask_videos['masks'], 'vid_a', '00000.png'))
    np.testing.assert_array_equal(ids, mask_videos['ids'][('vid_a', 0)])


def test_converted_json(mask_videos):
    ann = convert(mask_videos)
    assert ann['categories'] == [
        dict(id=1, name='cat'),
        dict(id=2, name='dog'),
        dict(id=3, name='bird')
    ]
    assert ann['videos'] == [
        dict(id=1, name='vid_a', width=W, height=H),
        dict(id=2, name='vid_b', width=W, height=H)
    ]
    assert [(im['video_id'], im['frame_id'], im['file_name'])
            for im in ann['images']] == [(1, 0, 'vid_a/00000.jpg'),
                                         (1, 1, 'vid_a/00001.jpg'),
                                         (2, 0, 'vid_b/00000.jpg')]
    got = [(a['image_id'], a['category_id'], a['instance_id'], a['bbox'],
            a['area']) for a in ann['annotations']]
    assert got == [
        (1, 1, 1, [3., 2., 6., 4.], 24.),
        (1, 2, 2, [1., 10., 2., 3.], 6.),
        (2, 1, 1, [5., 2., 6., 4.], 24.),
        (3, 3, 3, [0., 0., 3., 2.], 6.),
        (3, 2, 4, [4., 6., 5., 7.], 35.),
    ]
    assert [a['id'] for a in ann['annotations']] == [1, 2, 3, 4, 5]
    # RLE masks decode to exactly the pixels of each id (255 excluded).
    local_ids = [1, 2, 1, 300, 1000]
    frames = [('vid_a', 0), ('vid_a', 0), ('vid_a', 1), ('vid_b', 0),
              ('vid_b', 0)]
    for a, local_id, frame in zip(ann['annotations'], local_ids, frames):
        rle = dict(a['segmentation'], counts=a['segmentation']['counts'])
        decoded = mask_utils.decode(rle)
        np.testing.assert_array_equal(decoded,
                                      mask_videos['ids'][frame] == local_id)
    json.dumps(ann)  # serialisable


def test_converted_json_loads_in_youtube_vis_dataset(mask_videos, tmp_path):
    ann_file = str(tmp_path / 'train.json')
    with open(ann_file, 'w') as f:
        json.dump(convert(mask_videos), f)
    dataset = YouTubeVISDataset(
        dataset_version='2019',
        metainfo=dict(classes=tuple(CATEGORIES)),
        ann_file=ann_file,
        data_prefix=dict(img_path=mask_videos['images']),
        # The fixture frames are 12 px wide; keep them.
        filter_cfg=dict(filter_empty_gt=True, min_size=1),
        pipeline=[])
    assert dataset.metainfo['classes'] == tuple(CATEGORIES)
    assert len(dataset) == 2
    video = dataset.get_data_info(0)
    frame = video['images'][0]
    assert osp.isfile(frame['img_path'])
    assert [(i['bbox'], i['bbox_label'], i['instance_id'])
            for i in frame['instances']] == [([3., 2., 9., 6.], 0, 1),
                                             ([1., 10., 3., 13.], 1, 2)]
    assert video['images'][1]['instances'][0]['instance_id'] == 1
    labels = [
        i['bbox_label']
        for i in dataset.get_data_info(1)['images'][0]['instances']
    ]
    assert labels == [2, 1]


def test_csv_class_map_gives_the_same_json(mask_videos, tmp_path):
    csv_path = tmp_path / 'classes.csv'
    csv_path.write_text('video,instance_id,category\n'
                        'vid_a,1,cat\nvid_a,2,dog\nvid_b,300,bird\n'
                        '*,1000,dog\n')
    from_csv = convert_mask_videos(
        mask_videos['masks'],
        mask_videos['images'],
        str(csv_path),
        categories=CATEGORIES)
    assert from_csv == convert(mask_videos)


def test_csv_class_map_needs_categories(tmp_path):
    csv_path = tmp_path / 'classes.csv'
    csv_path.write_text('video,instance_id,category\nvid_a,1,cat\n')
    with pytest.raises(ValueError, match='classes.csv gives no category'):
        load_class_map(str(csv_path))


def test_missing_frame_image_names_the_mask(mask_videos):
    os.remove(osp.join(mask_videos['images'], 'vid_a', '00001.jpg'))
    with pytest.raises(FileNotFoundError) as error:
        convert(mask_videos)
    message = str(error.value)
    assert osp.join('vid_a', '00001.png') in message
    assert osp.join('vid_a', '00001.jpg') in message


def test_instance_without_class_names_video_id_and_file(mask_videos):
    class_map = json.loads(open(mask_videos['class_map']).read())
    del class_map['videos']['vid_a']['2']
    with open(mask_videos['class_map'], 'w') as f:
        json.dump(class_map, f)
    with pytest.raises(KeyError) as error:
        convert(mask_videos)
    message = str(error.value)
    assert "video 'vid_a'" in message and 'instance id 2' in message
    assert osp.join('vid_a', '00000.png') in message
    assert 'classes.json' in message


def test_size_mismatch_names_both_files(mask_videos):
    save_jpg(
        osp.join(mask_videos['images'], 'vid_b', '00000.jpg'), size=(H, W + 2))
    with pytest.raises(ValueError) as error:
        convert(mask_videos)
    message = str(error.value)
    assert osp.join('vid_b', '00000.png') in message
    assert osp.join('vid_b', '00000.jpg') in message
    assert f'{W + 2}x{H}' in message


def test_unknown_class_names_the_class_map(mask_videos):
    class_map = json.loads(open(mask_videos['class_map']).read())
    class_map['videos']['vid_b']['300'] = 'brid'
    with open(mask_videos['class_map'], 'w') as f:
        json.dump(class_map, f)
    with pytest.raises(ValueError) as error:
        convert(mask_videos)
    message = str(error.value)
    assert "'brid'" in message and 'classes.json' in message
    assert "video 'vid_b' instance 300" in message


def test_rgb_mask_is_rejected(mask_videos):
    path = osp.join(mask_videos['masks'], 'vid_a', '00001.png')
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(path)
    with pytest.raises(ValueError, match='RGB image'):
        convert(mask_videos)


def test_ignore_value_can_be_disabled(mask_videos):
    with pytest.raises(KeyError, match='instance id 255'):
        convert(mask_videos, ignore_value=None)


def test_cli_holds_out_videos(mask_videos, tmp_path):
    cli = load_cli('masks_to_ytvis')
    out, holdout = tmp_path / 'out' / 'train.json', tmp_path / 'hold.json'
    cli.main([
        '--masks', mask_videos['masks'], '--images', mask_videos['images'],
        '--class-map', mask_videos['class_map'], '--out',
        str(out), '--holdout', '1', '--holdout-out',
        str(holdout)
    ])
    train, held = json.loads(out.read_text()), json.loads(holdout.read_text())
    assert len(train['videos']) == 1 and len(held['videos']) == 1
    assert {v['name']
            for v in train['videos'] + held['videos']} == {'vid_a', 'vid_b'}
    assert len(train['annotations']) + len(held['annotations']) == 5
    assert held['categories'] == train['categories']


def test_cli_needs_holdout_out(mask_videos, tmp_path):
    cli = load_cli('masks_to_ytvis')
    with pytest.raises(SystemExit):
        cli.main([
            '--masks', mask_videos['masks'], '--images', mask_videos['images'],
            '--class-map', mask_videos['class_map'], '--out',
            str(tmp_path / 'x.json'), '--holdout', '1'
        ])


def test_unannotated_frames_for_inference(mask_videos, tmp_path):
    save_jpg(osp.join(mask_videos['images'], 'vid_b', '00001.jpg'))
    cli = load_cli('masks_to_ytvis')
    out = tmp_path / 'new.json'
    cli.main([
        '--images', mask_videos['images'], '--class-map',
        mask_videos['class_map'], '--out',
        str(out)
    ])
    ann = json.loads(out.read_text())
    assert ann['annotations'] == []
    assert [c['name'] for c in ann['categories']] == CATEGORIES
    assert [(im['video_id'], im['frame_id'], im['file_name'])
            for im in ann['images']] == [(1, 0, 'vid_a/00000.jpg'),
                                         (1, 1, 'vid_a/00001.jpg'),
                                         (2, 0, 'vid_b/00000.jpg'),
                                         (2, 1, 'vid_b/00001.jpg')]
    dataset = YouTubeVISDataset(
        dataset_version='2019',
        metainfo=dict(classes=tuple(CATEGORIES)),
        ann_file=str(out),
        data_prefix=dict(img_path=mask_videos['images']),
        test_mode=True,
        pipeline=[])
    assert [dataset.get_data_info(i)['video_length']
            for i in range(2)] == [2, 2]


def test_unannotated_frame_size_change_is_reported(mask_videos):
    save_jpg(
        osp.join(mask_videos['images'], 'vid_b', '00001.jpg'), size=(H, 2))
    with pytest.raises(ValueError, match='00001.jpg is 2x16'):
        convert_frame_videos(mask_videos['images'], CATEGORIES)
