"""init_model / inference_video on a synthetic clip, and their input errors."""
from pathlib import Path
from typing import List

import cv2
import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.dataset import pseudo_collate
from video_fixtures import moving_shapes

from mmvis_msts.apis import (VideoFrames, VideoInputError, compile_model,
                             inference_video, init_model)
from mmvis_msts.evaluation import ytvis_results

CONFIG = 'configs/msts_vis/msts-vis_r18-tiny_1xb4-2k_synthetic.py'
H, W = 64, 96
# natural order 2 < 10 < 11, lexicographic 10 < 11 < 2
FRAME_NAMES = ('frame_1.png', 'frame_2.png', 'frame_10.png', 'frame_11.png')


def write_mp4(path: Path, frames: List[np.ndarray], fps: float = 8) -> None:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*'mp4v'), fps, (w, h))
    for frame in frames:
        writer.write(frame)
    writer.release()


@pytest.fixture(scope='module')
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return init_model(CONFIG)


@pytest.fixture(scope='module')
def clip(tmp_path_factory) -> dict:
    """One clip as an mp4, its decoded frames, and those as a PNG folder.

    The mp4 is lossy, so the list and the folder hold the frames as OpenCV
    decodes them: all three inputs then show the model the same pixels.
    """
    root = tmp_path_factory.mktemp('clip')
    video = root / 'clip.mp4'
    write_mp4(video, moving_shapes(len(FRAME_NAMES)))
    decoded = list(VideoFrames(str(video)))
    folder = root / 'frames'
    folder.mkdir()
    for name, frame in zip(FRAME_NAMES, decoded):
        cv2.imwrite(str(folder / name), frame)
    return dict(video=str(video), frames=decoded, folder=str(folder))


def predictions(result) -> List[dict]:
    return [{
        key: frame.pred_track_instances.get(key).float()
        for key in ('masks', 'bboxes', 'scores', 'labels', 'instances_id')
    } for frame in result.video_data_samples]


def assert_same_predictions(result, expected) -> None:
    assert len(result) == len(expected)
    for got, want in zip(predictions(result), predictions(expected)):
        for key in want:
            torch.testing.assert_close(got[key], want[key], msg=key)


def test_frame_folder_is_read_in_natural_order(clip):
    frames = list(VideoFrames(clip['folder']))
    assert len(frames) == len(clip['frames'])
    for got, want in zip(frames, clip['frames']):
        np.testing.assert_array_equal(got, want)


def run_recording_inputs(model, video, monkeypatch) -> tuple:
    """``inference_video`` and the (1, T, 3, H', W') tensor the model's
    one-pass predict (``predict_whole``) got.

    Random weights make every mask the whole frame whatever it shows, so
    the predictions alone would not tell frames apart: the tests compare
    what the model was fed as well.
    """
    fed = []

    def predict_whole(inputs, data_samples, rescale=True):
        fed.append(inputs)
        return type(model).predict_whole(model, inputs, data_samples, rescale)

    with monkeypatch.context() as patch:
        patch.setattr(model, 'predict_whole', predict_whole)
        result = inference_video(model, video, video_id=3)
    return result, fed[0]


def test_three_input_kinds_match_predict_on_the_config_pipeline(
        model, clip, tmp_path, monkeypatch):
    result, inputs = run_recording_inputs(model, clip['frames'], monkeypatch)
    assert len(result) == len(FRAME_NAMES)
    first = result[0].pred_track_instances
    assert len(first) > 0
    assert first.masks.shape == (len(first), H, W)
    assert first.masks.dtype == torch.bool
    assert result[0].video_id == 3
    assert [f.frame_id for f in result.video_data_samples] == [0, 1, 2, 3]
    for video in (clip['video'], clip['folder']):
        other, other_inputs = run_recording_inputs(model, video, monkeypatch)
        torch.testing.assert_close(other_inputs, inputs, rtol=0, atol=0)
        assert_same_predictions(other, result)

    # expected: the config's own test pipeline reading the frames from
    # files (LoadImageFromFile, no annotations), then model.predict
    paths = [str(tmp_path / f'{t}.png') for t in range(len(FRAME_NAMES))]
    for path, frame in zip(paths, clip['frames']):
        cv2.imwrite(path, frame)
    n = len(paths)
    packed = Compose(model.cfg.test_dataloader.dataset.pipeline)(
        dict(
            img_path=paths,
            img_id=list(range(n)),
            frame_id=list(range(n)),
            video_id=[3] * n,
            instances=[[] for _ in paths],
            video_length=[n] * n,
            ori_video_length=[n] * n))
    with torch.no_grad():
        data = model.data_preprocessor(pseudo_collate([packed]), False)
        expected = model.predict(**data)[0]
    assert inputs.shape[:3] == (1, n, 3)
    torch.testing.assert_close(data['inputs'], inputs, rtol=0, atol=0)
    assert_same_predictions(result, expected)


def test_ytvis_results_follow_the_tracks(model, clip):
    result = inference_video(model, clip['frames'], video_id=7)
    tracks = ytvis_results(result)
    frames = result.video_data_samples
    preds = frames[0].pred_track_instances
    assert len(tracks) == len(preds)
    # one track per instance id, as the metric groups them
    for track, track_id in zip(tracks, preds.instances_id.tolist()):
        assert track['video_id'] == 7
        assert len(track['segmentations']) == len(frames)
        per_frame = [
            f.pred_track_instances[f.pred_track_instances.instances_id ==
                                   track_id] for f in frames
        ]
        assert track['category_id'] == int(per_frame[0].labels[0]) + 1
        assert track['score'] == pytest.approx(
            float(torch.cat([p.scores for p in per_frame]).mean()))
        for rle, pred in zip(track['segmentations'], per_frame):
            np.testing.assert_array_equal(
                mask_util.decode(rle).astype(bool), pred.masks[0].numpy())


def test_checkpoint_classes_and_weights(model, tmp_path):
    state = {k: v + 1 for k, v in model.state_dict().items()}
    classes = ('w', 'x', 'y', 'z')
    ckpt = tmp_path / 'model.pth'
    torch.save(
        dict(meta=dict(dataset_meta=dict(classes=classes)), state_dict=state),
        ckpt)
    loaded = init_model(CONFIG, str(ckpt))
    assert loaded.dataset_meta['classes'] == classes
    assert not loaded.training
    for key, value in loaded.state_dict().items():
        torch.testing.assert_close(value, state[key])
    # without a checkpoint: the config's dataset classes
    assert model.dataset_meta['classes'] == ('circle', 'triangle', 'square',
                                             'star')

    wrong = tmp_path / 'three_classes.pth'
    torch.save(
        dict(
            meta=dict(dataset_meta=dict(classes=classes[:3])),
            state_dict=state), wrong)
    with pytest.raises(ValueError, match='three_classes.pth names 3 classes'):
        init_model(CONFIG, str(wrong))
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        init_model(CONFIG, str(tmp_path / 'missing.pth'))


def test_bad_inputs_name_the_file(model, tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere.mp4 does not'):
        VideoFrames(str(tmp_path / 'nowhere.mp4'))

    garbage = tmp_path / 'garbage.mp4'
    garbage.write_text('not a video')
    with pytest.raises(VideoInputError, match='cannot decode.*garbage.mp4'):
        VideoFrames(str(garbage))

    empty_video = tmp_path / 'empty.avi'
    cv2.VideoWriter(
        str(empty_video), cv2.VideoWriter_fourcc(*'MJPG'), 5,
        (W, H)).release()
    with pytest.raises(VideoInputError, match='empty.avi has no frame'):
        VideoFrames(str(empty_video))

    no_images = tmp_path / 'no_images'
    no_images.mkdir()
    (no_images / 'notes.txt').write_text('frames go here')
    with pytest.raises(VideoInputError, match='no_images holds no image'):
        VideoFrames(str(no_images))

    mixed = tmp_path / 'mixed'
    mixed.mkdir()
    cv2.imwrite(str(mixed / '1.png'), moving_shapes(1)[0])
    cv2.imwrite(str(mixed / '2.png'), moving_shapes(1, size=(H, W + 8))[0])
    with pytest.raises(VideoInputError, match=r'2.png is 104x64 .*is 96x64'):
        inference_video(model, str(mixed))

    with pytest.raises(VideoInputError, match='frame list is empty'):
        VideoFrames([])
    with pytest.raises(VideoInputError, match='frame 1 of the frame list'):
        VideoFrames([moving_shapes(1)[0], np.zeros((H, W))])


def test_clip_wise_stream_matches_the_model_window_loop(model):
    """``window``/``stride``: frames streamed window by window, masks as
    RLE; the same tracks as the model's own clip-wise loop over the whole
    preprocessed video (test_cfg), and ytvis_results reads them."""
    from mmdet.structures import TrackDataSample

    from mmvis_msts.apis import build_inference_pipeline, with_dense_masks
    from mmvis_msts.models.utils import track_sample
    frames = moving_shapes(7)
    result = inference_video(model, frames, window=3, stride=2)
    assert len(result) == 7
    assert all('masks' not in f.pred_track_instances
               for f in result.video_data_samples)

    pipeline = build_inference_pipeline(model.cfg)
    packed = [
        pipeline(dict(img=[f], img_id=[t], frame_id=[t], video_id=[0]))
        for t, f in enumerate(frames)
    ]
    video = TrackDataSample()
    video.video_data_samples = [p['data_samples'][0] for p in packed]
    saved = model.track_head.test_cfg
    model.track_head.test_cfg = dict(saved, clip_window=3, clip_stride=2)
    try:
        with torch.no_grad():
            data = model.data_preprocessor(
                dict(
                    inputs=[torch.cat([p['inputs'] for p in packed])],
                    data_samples=[video]), False)
            expected = model.predict(**data)[0]
    finally:
        model.track_head.test_cfg = saved
    dense = [with_dense_masks(f) for f in result.video_data_samples]
    for got, want in zip(dense, expected.video_data_samples):
        got, want = got.pred_track_instances, want.pred_track_instances
        assert torch.equal(got.masks, want.masks)
        assert torch.equal(got.instances_id, want.instances_id)
        torch.testing.assert_close(got.scores, want.scores)
    tracks = ytvis_results(result)  # the RLEs as they are
    assert tracks == ytvis_results(track_sample(dense))
    assert len(tracks) == len({
        i
        for f in dense
        for i in f.pred_track_instances.instances_id.tolist()
    })
    with pytest.raises(ValueError, match='stride needs a window'):
        inference_video(model, frames, stride=2)


def test_config_windows_switch_on_past_their_length(model):
    """A ``clip_window`` in the config runs longer videos clip-wise (masks
    as RLE) without any argument; ``window=0`` runs them in one pass, as a
    config without clip-wise settings does."""
    frames = moving_shapes(7)
    saved = model.track_head.test_cfg
    try:
        model.track_head.test_cfg = dict(saved, clip_window=None)
        expected = inference_video(model, frames)
        model.track_head.test_cfg = dict(saved, clip_window=3, clip_stride=2)
        clip = inference_video(model, frames)
        whole = inference_video(model, frames, window=0)
        short = inference_video(model, frames[:3])
    finally:
        model.track_head.test_cfg = saved
    assert all('masks_rle' in f.pred_track_instances for f in clip)
    assert all('masks' in f.pred_track_instances for f in short)
    for got, want in zip(whole, expected):
        got, want = got.pred_track_instances, want.pred_track_instances
        assert torch.equal(got.masks, want.masks)
        assert torch.equal(got.instances_id, want.instances_id)
    with pytest.raises(ValueError, match='stride needs a window'):
        inference_video(model, frames, window=0, stride=2)


@pytest.mark.parametrize('window', [0, 3])
def test_bf16_runs_the_network_in_autocast(model, monkeypatch, window):
    """``bf16=True``: the backbone runs inside bfloat16 autocast (whole
    video and clip-wise); the results are float32, as without it."""
    seen = []
    forward = model.backbone.forward

    def recording(*args, **kwargs):
        seen.append(torch.is_autocast_enabled('cpu'))
        return forward(*args, **kwargs)

    monkeypatch.setattr(model.backbone, 'forward', recording)
    frames = moving_shapes(5)
    inference_video(model, frames, window=window)
    result = inference_video(model, frames, window=window, bf16=True)
    half = len(seen) // 2
    assert seen == [False] * half + [True] * half and half > 0
    assert torch.get_autocast_dtype('cpu') == torch.bfloat16
    for frame in result.video_data_samples:
        assert frame.pred_track_instances.scores.dtype == torch.float32
        assert frame.pred_track_instances.bboxes.dtype == torch.float32


def test_compiled_model_gives_the_eager_models_predictions():
    """``compile_model`` compiles the parts in place (same modules, same
    parameter names) and inference gives the eager model's predictions.
    ``aot_eager`` traces the graphs and runs
    them through AOT autograd without generating code, so the check takes
    seconds, not the minutes of inductor."""
    torch.manual_seed(0)
    eager = init_model(CONFIG)
    torch.manual_seed(0)
    compiled = init_model(CONFIG)
    names = [n for n, _ in compiled.named_parameters()]
    parts = compile_model(compiled, backend='aot_eager')
    assert parts == [
        'backbone', 'neck', 'track_head.encoder', 'track_head.decoder',
        'track_head.mask_head'
    ]
    assert compiled.backbone._compiled_call_impl is not None
    assert eager.backbone._compiled_call_impl is None
    assert [n for n, _ in compiled.named_parameters()] == names
    frames = moving_shapes(3)
    want = inference_video(eager, frames, window=0)
    assert len(want.video_data_samples[0].pred_track_instances) > 0
    assert_same_predictions(inference_video(compiled, frames, window=0), want)


def test_compile_model_reaches_inside_model_wrappers():
    # mmengine's MMSeparateDistributedDataParallel wraps each child of a
    # model on its own; DataParallel is a registered wrapper that runs on CPU
    torch.manual_seed(0)
    model = init_model(CONFIG)
    model.track_head = torch.nn.DataParallel(model.track_head)
    parts = compile_model(torch.nn.DataParallel(model), backend='eager')
    assert parts == [
        'backbone', 'neck', 'track_head.encoder', 'track_head.decoder',
        'track_head.mask_head'
    ]
    assert model.track_head.module.encoder._compiled_call_impl is not None
