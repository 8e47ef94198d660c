import json
import os.path as osp

import numpy as np
import pytest
from converter_cli import load_cli
from pycocotools import mask as mask_utils

from mmvis_msts.datasets import OVISDataset
from mmvis_msts.datasets.converters import convert_raw_vis
from mmvis_msts.datasets.validation import VISDatasetError

_BOX = np.zeros((40, 40), np.uint8)
_BOX[1:6, 1:6] = 1  # the 5x5 box [1, 1, 5, 5] of the tracks below
RLE = dict(
    size=[40, 40],
    counts=mask_utils.encode(np.asfortranarray(_BOX))['counts'].decode())


def raw_json(with_annotations=True):
    """OVIS-style raw annotations: two videos, tracks with absent frames."""
    raw = dict(
        categories=[
            dict(id=i + 1, name=n)
            for i, n in enumerate(OVISDataset.METAINFO['classes'])
        ],
        videos=[
            dict(
                id=5,
                width=40,
                height=40,
                length=3,
                file_names=[
                    'vid_x/img_0000001.jpg', 'vid_x/img_0000002.jpg',
                    'vid_x/img_0000003.jpg'
                ]),
            dict(
                id=9,
                width=40,
                height=40,
                length=2,
                file_names=['vid_y/img_0000001.jpg', 'vid_y/img_0000002.jpg']),
        ])
    if with_annotations:
        box = [1, 1, 5, 5]
        raw['annotations'] = [
            dict(
                id=1,
                video_id=5,
                category_id=2,
                iscrowd=0,
                segmentations=[RLE, None, RLE],
                bboxes=[box, None, box],
                areas=[25, None, 25]),
            dict(
                id=2,
                video_id=5,
                category_id=25,
                iscrowd=0,
                segmentations=[RLE, RLE, RLE],
                bboxes=[box] * 3,
                areas=[25] * 3),
            dict(
                id=3,
                video_id=9,
                category_id=1,
                segmentations=[None, RLE],
                bboxes=[None, box],
                areas=[None, 25]),
        ]
    return raw


def test_convert_train_split():
    out = convert_raw_vis(raw_json())
    assert [v['name'] for v in out['videos']] == ['vid_x', 'vid_y']
    assert [(im['id'], im['video_id'], im['frame_id'])
            for im in out['images']] == [(1, 5, 0), (2, 5, 1), (3, 5, 2),
                                         (4, 9, 0), (5, 9, 1)]
    got = [(a['image_id'], a['category_id'], a['instance_id'], a['iscrowd'])
           for a in out['annotations']]
    assert got == [(1, 2, 1, 0), (3, 2, 1, 0), (1, 25, 2, 0), (2, 25, 2, 0),
                   (3, 25, 2, 0), (5, 1, 3, 0)]
    assert [a['id'] for a in out['annotations']] == [1, 2, 3, 4, 5, 6]
    assert out['annotations'][0]['bbox'] == [1, 1, 5, 5]


def test_convert_valid_split_has_no_annotations():
    out = convert_raw_vis(raw_json(with_annotations=False))
    assert len(out['images']) == 5 and out['annotations'] == []


def test_frame_count_mismatch_is_reported():
    raw = raw_json()
    raw['annotations'][1]['segmentations'] = [RLE]
    with pytest.raises(
            VISDatasetError,
            match='annotations_train.json: video 5, annotation 2: 1 '
            'segmentations, 3 bboxes, 3 areas for the 3 frames'):
        convert_raw_vis(raw, source='annotations_train.json')


def test_cli_output_loads_in_ovis_dataset(tmp_path):
    cli = load_cli('ytvis_raw_to_cocovid')
    raw_path = tmp_path / 'annotations_train.json'
    raw_path.write_text(json.dumps(raw_json()))
    out_path = tmp_path / 'annotations' / 'ovis_train.json'
    cli.main([str(raw_path), str(out_path)])
    dataset = OVISDataset(
        ann_file=str(out_path),
        data_prefix=dict(img_path=str(tmp_path / 'train')),
        pipeline=[],
        test_mode=True,
        frame_check='none')  # the json only, no frames on disk
    video = dataset.get_data_info(0)
    assert video['video_length'] == 3
    assert [i['bbox_label']
            for i in video['images'][0]['instances']] == [1, 24]
    assert video['images'][0]['img_path'] == osp.join(
        str(tmp_path / 'train'), 'vid_x/img_0000001.jpg')


def test_cli_reports_bad_input_without_a_traceback(tmp_path, capsys):
    cli = load_cli('ytvis_raw_to_cocovid')
    raw = raw_json()
    raw['annotations'][1]['segmentations'] = [RLE]
    raw_path = tmp_path / 'annotations_train.json'
    raw_path.write_text(json.dumps(raw))
    out_path = tmp_path / 'out.json'
    with pytest.raises(SystemExit) as exit_info:
        cli.main([str(raw_path), str(out_path)])
    message = str(exit_info.value.code)
    assert message.startswith('ytvis_raw_to_cocovid.py: error: ')
    assert 'video 5, annotation 2: 1 segmentations' in message
    assert not out_path.exists()
