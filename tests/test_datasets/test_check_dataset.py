"""tools/misc/check_dataset.py: every problem of a data set, with counts."""
import importlib.util
import json
import os
import os.path as osp
from types import ModuleType

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from mmvis_msts.datasets.synthetic import DEFAULT_CLASSES

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_CONFIG = osp.join(
    REPO, 'configs/msts_vis/msts-vis_r18-tiny_1xb4-2k_synthetic.py')


@pytest.fixture(scope='module')
def cli() -> ModuleType:
    path = osp.join(REPO, 'tools', 'misc', 'check_dataset.py')
    spec = importlib.util.spec_from_file_location('check_dataset', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _edit(ann_file: str, change) -> None:
    with open(ann_file) as f:
        ann = json.load(f)
    change(ann)
    with open(ann_file, 'w') as f:
        json.dump(ann, f)


def _plant_faults(ann: dict) -> None:
    """Annotation 4 in an unknown video, annotation 3 with a cut RLE."""
    by_id = {a['id']: a for a in ann['annotations']}
    by_id[4]['video_id'] = 99
    counts = by_id[3]['segmentation']['counts']
    by_id[3]['segmentation']['counts'] = counts[:-2]


def test_json_report_lists_every_problem(tmp_path, make_vis_dataset, cli,
                                         capsys):
    root = str(tmp_path)
    ann_file = make_vis_dataset(root, [('a', 3), ('b', 2), ('c', 1)],
                                DEFAULT_CLASSES)
    _edit(ann_file, _plant_faults)
    frames = osp.join(root, 'train', 'JPEGImages')
    os.remove(osp.join(frames, 'b/00001.jpg'))
    with open(osp.join(frames, 'a/00002.jpg'), 'r+b') as f:
        f.truncate(300)
    status = cli.main(
        [ann_file, '--img-root', frames, '--classes', *DEFAULT_CLASSES])
    out = capsys.readouterr().out
    assert status == 1
    lines = out.splitlines()

    def line_of(kind: str) -> str:
        [line] = [
            x for x in lines if x.split()[:2] ==
            ['FATAL' if kind != 'one_frame_video' else 'WARNING', kind]
        ]
        return line

    assert 'video 99, annotation 4' in line_of('unknown_video')
    assert 'annotation 3' in line_of('bad_segmentation')
    assert "frame 'b/00001.jpg'" in line_of('missing_frame')
    assert "frame 'a/00002.jpg'" in line_of('corrupt_frame')
    assert 'video 3' in line_of('one_frame_video')
    counts = {
        tuple(x.split()[:2]): int(x.split()[2])
        for x in lines if len(x.split()) == 3 and x.split()[2].isdigit()
    }
    assert counts == {
        ('unknown_video', 'fatal'): 1,
        ('bad_segmentation', 'fatal'): 1,
        ('missing_frame', 'fatal'): 1,
        ('corrupt_frame', 'fatal'): 1,
        ('one_frame_video', 'warning'): 1
    }
    assert '-> 4 fatal' in out and '1 warning (one_frame_video: 1)' in out


def test_clean_data_set_exits_0(tmp_path, make_vis_dataset, cli, capsys):
    root = str(tmp_path)
    ann_file = make_vis_dataset(root, [('a', 3), ('b', 2)], DEFAULT_CLASSES)
    status = cli.main([
        ann_file, '--img-root',
        osp.join(root, 'train', 'JPEGImages'), '--frames', 'decode'
    ])
    out = capsys.readouterr().out
    assert status == 0
    assert '5 frames under' in out and '-> no problems' in out


def test_config_checks_each_split(tmp_path, make_vis_dataset, cli, capsys):
    """The tiny config's loaders, pointed at a fixture with a bad val."""
    root = str(tmp_path)
    make_vis_dataset(root, [('a', 3), ('b', 2)], DEFAULT_CLASSES)
    val_file = make_vis_dataset(root, [('v', 2)], DEFAULT_CLASSES, split='val')
    os.remove(osp.join(root, 'val', 'JPEGImages', 'v/00001.jpg'))
    status = cli.main([
        TINY_CONFIG, '--frames', 'exists', '--cfg-options',
        f'train_dataloader.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}'
    ])
    out = capsys.readouterr().out
    assert status == 1
    sections = out.split('== ')
    [train] = [s for s in sections if s.startswith('train (')]
    [val] = [s for s in sections if s.startswith('val (')]
    assert 'SyntheticVISDataset' in train and '-> no problems' in train
    assert val_file in val
    assert f"{val_file}: video 1, frame 'v/00001.jpg'" in val
    assert '-> 1 fatal (missing_frame: 1)' in val
    # test_dataloader is the val loader: checked once
    assert not [s for s in sections if s.startswith('test (')]
    assert 'all 2 files: 1 fatal' in out


def test_raw_json_with_short_segmentation_list(tmp_path, cli, capsys):
    mask = np.zeros((16, 16), np.uint8)
    mask[2:6, 2:6] = 1
    rle = mask_utils.encode(np.asfortranarray(mask))
    rle = dict(size=[16, 16], counts=rle['counts'].decode())
    raw = dict(
        categories=[dict(id=1, name='circle')],
        videos=[
            dict(id=3, width=16, height=16, file_names=['v/0.jpg', 'v/1.jpg'])
        ],
        annotations=[
            dict(
                id=8,
                video_id=3,
                category_id=1,
                segmentations=[rle],
                bboxes=[[2, 2, 4, 4]],
                areas=[16])
        ])
    path = str(tmp_path / 'annotations_train.json')
    with open(path, 'w') as f:
        json.dump(raw, f)
    assert cli.main([path]) == 1
    out = capsys.readouterr().out
    assert 'raw json: 1 videos' in out
    assert (f'{path}: video 3, annotation 8: 1 segmentations, 1 bboxes, 1 '
            'areas for the 2 frames') in out
    assert 'frames not checked (no --img-root)' in out


def test_truncated_json(tmp_path, cli, capsys):
    path = tmp_path / 'train.json'
    path.write_text('{"videos": [{"id": 1, "width": 6')
    assert cli.main([str(path)]) == 1
    out = capsys.readouterr().out
    assert 'invalid_json' in out and 'truncated?' in out
    assert '-> 1 fatal (invalid_json: 1)' in out
