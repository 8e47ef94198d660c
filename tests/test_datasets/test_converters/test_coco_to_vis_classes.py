import json

import pytest
from converter_cli import load_cli
from mmdet.datasets import YouTubeVISDataset

from mmvis_msts.datasets.converters import (COCO_TO_VIS, relabel_coco,
                                            vis_classes)


def coco_json():
    categories = [(1, 'person'), (2, 'bicycle'), (3, 'car'), (4, 'motorcycle'),
                  (16, 'bird'), (34, 'frisbee'), (74, 'mouse')]
    anns = [(1, 1), (1, 3), (2, 2), (2, 4), (3, 74), (3, 34), (4, 16)]
    return dict(
        info=dict(year=2017),
        categories=[dict(id=i, name=n) for i, n in categories],
        images=[dict(id=i, file_name=f'{i}.jpg') for i in (1, 2, 3, 4)],
        annotations=[
            dict(id=k + 1, image_id=image, category_id=cat)
            for k, (image, cat) in enumerate(anns)
        ])


def test_vis_classes_leave_youtube_vis_metainfo_alone():
    before = YouTubeVISDataset.__dict__.get('METAINFO')
    classes = vis_classes('2021')
    assert len(classes) == 40 and classes[4] == 'car'
    assert vis_classes('2019')[5] == 'sedan'
    assert YouTubeVISDataset.__dict__.get('METAINFO') == before


def test_relabel_for_2019():
    out = relabel_coco(coco_json(), vis_classes('2019'), COCO_TO_VIS['2019'])
    assert len(out['categories']) == 40
    assert out['categories'][5] == dict(id=6, name='sedan')
    assert out['info'] == dict(year=2017)
    # person -> person (1), car -> sedan (6), bicycle/motorcycle ->
    # motorbike (21); the computer mouse, frisbee and (in 2019) bird go.
    assert [(a['id'], a['category_id'])
            for a in out['annotations']] == [(1, 1), (2, 6), (3, 21), (4, 21)]
    assert [im['id'] for im in out['images']] == [1, 2]


def test_relabel_for_2021():
    out = relabel_coco(coco_json(), vis_classes('2021'), COCO_TO_VIS['2021'])
    by_id = {c['id']: c['name'] for c in out['categories']}
    assert [by_id[a['category_id']] for a in out['annotations']
            ] == ['person', 'car', 'motorbike', 'motorbike', 'bird']
    assert [im['id'] for im in out['images']] == [1, 2, 4]


def test_unknown_category_is_reported():
    coco = coco_json()
    coco['annotations'][0]['category_id'] = 99
    with pytest.raises(KeyError, match='annotation 1 has category_id 99'):
        relabel_coco(coco, vis_classes('2019'), COCO_TO_VIS['2019'])


def test_mapping_must_fit_the_classes():
    with pytest.raises(ValueError, match='sedan'):
        relabel_coco(coco_json(), vis_classes('2021'), COCO_TO_VIS['2019'])


def test_cli(tmp_path):
    cli = load_cli('coco_to_vis_classes')
    src = tmp_path / 'coco.json'
    src.write_text(json.dumps(coco_json()))
    cli.main([str(src), str(tmp_path / 'out.json'), '--version', '2019'])
    out = json.loads((tmp_path / 'out.json').read_text())
    assert len(out['annotations']) == 4
