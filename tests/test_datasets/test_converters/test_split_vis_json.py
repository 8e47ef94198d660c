import json

import pytest
from converter_cli import load_cli

from mmvis_msts.datasets.converters import split_vis_json


def vis_json(num_videos=4, frames=3):
    ann = dict(
        info=dict(description='tiny'),
        categories=[dict(id=1, name='cat')],
        videos=[],
        images=[],
        annotations=[])
    for v in range(1, num_videos + 1):
        ann['videos'].append(dict(id=v, name=f'v{v}', width=8, height=8))
        for f in range(frames):
            image_id = len(ann['images']) + 1
            ann['images'].append(
                dict(id=image_id, video_id=v, frame_id=f, file_name='x'))
            ann['annotations'].append(
                dict(
                    id=len(ann['annotations']) + 1,
                    video_id=v,
                    image_id=image_id,
                    category_id=1,
                    instance_id=v))
    return ann


def test_split_by_count_partitions_by_video():
    ann = vis_json()
    train, held = split_vis_json(ann, num_holdout=1, seed=3)
    held_ids = {v['id'] for v in held['videos']}
    assert len(held_ids) == 1 and len(train['videos']) == 3
    for part, inside in ((train, False), (held, True)):
        assert part['categories'] == ann['categories']
        assert part['info'] == ann['info']
        assert all(
            (im['video_id'] in held_ids) == inside for im in part['images'])
        assert all(
            (a['video_id'] in held_ids) == inside for a in part['annotations'])
    # Nothing lost, nothing renumbered.
    assert sorted(a['id']
                  for a in train['annotations'] + held['annotations']) == list(
                      range(1, 13))
    assert sorted(im['id'] for im in train['images'] + held['images']) == list(
        range(1, 13))


def test_split_is_seeded():
    ann = vis_json(num_videos=10)

    def pick(seed):
        held = split_vis_json(ann, 3, seed=seed)[1]
        return tuple(v['name'] for v in held['videos'])

    assert pick(0) == pick(0)
    assert len(pick(0)) == 3
    assert len({pick(seed) for seed in range(5)}) > 1


def test_split_by_names():
    train, held = split_vis_json(vis_json(), holdout_names=['v2', 'v4'])
    assert [v['name'] for v in held['videos']] == ['v2', 'v4']
    assert [v['name'] for v in train['videos']] == ['v1', 'v3']


@pytest.mark.parametrize('kwargs, error, match', [
    (dict(num_holdout=4), ValueError, r'\[1, 3\]'),
    (dict(num_holdout=0), ValueError, 'num_holdout'),
    (dict(holdout_names=['v9']), KeyError, 'v9'),
    (dict(holdout_names=['v1', 'v2', 'v3', 'v4']), ValueError, 'no training'),
    (dict(), ValueError, 'exactly one'),
    (dict(num_holdout=1, holdout_names=['v1']), ValueError, 'exactly one'),
])
def test_split_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        split_vis_json(vis_json(), **kwargs)


def test_cli(tmp_path):
    cli = load_cli('split_vis_json')
    src = tmp_path / 'train.json'
    src.write_text(json.dumps(vis_json()))
    cli.main([
        str(src), '--holdout-videos', 'v3', '--train-out',
        str(tmp_path / 'a.json'), '--holdout-out',
        str(tmp_path / 'sub' / 'b.json')
    ])
    held = json.loads((tmp_path / 'sub' / 'b.json').read_text())
    train = json.loads((tmp_path / 'a.json').read_text())
    assert [v['name'] for v in held['videos']] == ['v3']
    assert len(train['annotations']) == 9
