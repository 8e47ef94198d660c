"""The clip-wise mode of MSSTSVIS.predict against the whole-video mode."""
import copy

import pytest
import torch
from mmdet.structures import TrackDataSample
from mmdet.utils import register_all_modules
from mmengine.config import Config
from test_mssts_vis import TINY_CONFIG, batch, build_model, draw_clip

from mmvis_msts.evaluation import ytvis_results
from mmvis_msts.models.tracking_heads.vis_postprocess import decode_rle_masks
from mmvis_msts.models.vis.clip_windows import clip_settings, iter_windows


@pytest.fixture(scope='module')
def model():
    register_all_modules(init_default_scope=True)
    model = build_model(Config.fromfile(str(TINY_CONFIG)))
    model.eval()
    return model


def run(model, data, **clip_cfg):
    """Predict with the head's test_cfg extended by ``clip_cfg`` (the
    config's own window settings replaced)."""
    saved = model.track_head.test_cfg
    model.track_head.test_cfg = {
        **saved, 'clip_window': None,
        'clip_stride': None,
        **clip_cfg
    }
    try:
        with torch.no_grad():
            return model.predict(**copy.deepcopy(data))[0]
    finally:
        model.track_head.test_cfg = saved


def frames(output):
    return [f.pred_track_instances for f in output.video_data_samples]


def test_clip_settings():
    assert clip_settings({}, 1000) is None
    assert clip_settings(dict(clip_window=8), 8) is None
    assert clip_settings(dict(clip_window=8), 9) == (8, 4)
    assert clip_settings(
        dict(clip_window=8, clip_stride=8, clip_mode_min_frames=2),
        2) == (8, 8)
    with pytest.raises(ValueError, match='clip_stride'):
        clip_settings(dict(clip_window=4, clip_stride=5), 10)


def test_iter_windows_reads_lazily():
    read = []

    def items():
        for i in range(7):
            read.append(i)
            yield i

    windows = []
    for inds, last in iter_windows(items(), 3, 2):
        # at most window + 1 items read ahead of the window's start
        assert len(read) <= inds[0] + 4
        windows.append((inds, last))
    assert windows == [([0, 1, 2], False), ([2, 3, 4], False), ([4, 5,
                                                                 6], True)]


def test_one_window_equals_whole_video(model):
    """A video as long as the window: the same tracks as the whole-video
    mode (masks, boxes, scores, labels and ids)."""
    data = batch(model, [draw_clip(4, size=(64, 96))], training=False)
    whole = frames(run(model, data))
    clip = frames(run(model, data, clip_window=4, clip_mode_min_frames=4))
    assert len(whole) == len(clip) == 4
    assert len(whole[0]) > 0
    for a, b in zip(whole, clip):
        assert torch.equal(a.masks, b.masks)
        assert torch.equal(a.bboxes, b.bboxes)
        assert torch.equal(a.labels, b.labels)
        assert torch.equal(a.instances_id, b.instances_id)
        torch.testing.assert_close(a.scores, b.scores)


def test_static_video_keeps_one_id_per_instance(model):
    """8 copies of one frame, windows of 4 every 2 frames: every window
    sees the same frames, so every candidate links to its track and the
    video holds as many ids as one window has candidates."""
    clip = draw_clip(1, size=(64, 96))
    clip['inputs'] = clip['inputs'].expand(8, -1, -1, -1).clone()
    sample = clip['data_samples']
    video = TrackDataSample()
    video.video_data_samples = [copy.deepcopy(sample[0]) for _ in range(8)]
    for t, frame in enumerate(video.video_data_samples):
        frame.set_metainfo(dict(frame_id=t, img_id=t, video_length=8))
    clip['data_samples'] = video
    data = batch(model, [clip], training=False)
    whole_first = frames(run(model, data))[0]
    preds = frames(run(model, data, clip_window=4, clip_stride=2))
    ids = [p.instances_id.tolist() for p in preds]
    assert len(preds) == 8
    assert ids[0] == list(range(len(whole_first)))
    assert all(frame_ids == ids[0] for frame_ids in ids)
    for p in preds:
        assert torch.equal(p.masks, preds[0].masks)


def test_clip_wise_output_feeds_ytvis_results(model):
    data = batch(model, [draw_clip(6, size=(64, 96))], training=False)
    output = run(model, data, clip_window=3, clip_stride=2)
    tracks = ytvis_results(output)
    num_ids = len({i for p in frames(output) for i in p.instances_id.tolist()})
    assert len(tracks) == num_ids
    assert all(len(t['segmentations']) == 6 for t in tracks)


def test_rle_masks_decode_to_the_masks(model):
    data = batch(model, [draw_clip(5, size=(64, 96))], training=False)
    inputs, video = data['inputs'], data['data_samples'][0]
    windows = ((inputs[:, inds], _sub(video, inds), last)
               for inds, last in iter_windows(range(5), 3, 2))
    with torch.no_grad():
        rle = [
            copy.deepcopy(f.pred_track_instances)
            for f in model.predict_clip_wise(windows, 2, as_rle=True)
        ]
    dense = frames(run(model, data, clip_window=3, clip_stride=2))
    assert len(rle) == 5
    for r, d in zip(rle, dense):
        assert 'masks' not in r
        assert torch.equal(decode_rle_masks(r, d.masks.shape[1:]), d.masks)
        assert torch.equal(r.instances_id, d.instances_id)


def _sub(video, inds):
    sub = TrackDataSample()
    sub.video_data_samples = [video[i] for i in inds]
    return sub
