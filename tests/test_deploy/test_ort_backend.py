"""inference_video with the onnxruntime backend against PyTorch.

Both run the same preprocessing, windows, linking and post-processing; only
the network step differs, so the tracks must agree.
"""
import pytest
import torch
from deploy_fixtures import CONFIG
from video_fixtures import moving_shapes

pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')

from mmvis_msts.apis import inference_video, with_dense_masks  # noqa: E402,E501 isort:skip
from mmvis_msts.deploy import init_ort_model  # noqa: E402 isort:skip

# 7 frames in windows of 4 every 2: windows of 4, 4 and 3 frames
WINDOW, STRIDE, CLIP_WISE_FRAMES = 4, 2, 7
# a pixel whose logit lies within float32 noise of the threshold may flip
MAX_FLIPPED_PIXELS = 1e-4


def assert_same_tracks(got, want) -> None:
    assert len(got) == len(want)
    num_tracks = 0
    for frame_got, frame_want in zip(got.video_data_samples,
                                     want.video_data_samples):
        a, b = frame_got.pred_track_instances, frame_want.pred_track_instances
        assert torch.equal(a.instances_id, b.instances_id)
        assert torch.equal(a.labels, b.labels)
        torch.testing.assert_close(a.scores, b.scores, atol=1e-4, rtol=0)
        # clip-wise frames keep RLE masks: compared decoded, like dense ones
        masks_a, masks_b = (
            with_dense_masks(f).pred_track_instances.masks
            for f in (frame_got, frame_want))
        flipped = (masks_a != masks_b).float().mean().item() \
            if len(a) else 0.0
        assert flipped <= MAX_FLIPPED_PIXELS
        num_tracks += len(a)
    # otherwise the comparison says nothing
    assert num_tracks > 0


def test_whole_video(model, onnx_file):
    frames = moving_shapes(3)
    ort_model = init_ort_model(CONFIG, onnx_file(3), num_threads=1)
    assert_same_tracks(
        inference_video(ort_model, frames), inference_video(model, frames))


def test_clip_wise(model, onnx_file):
    frames = moving_shapes(CLIP_WISE_FRAMES)
    ort_model = init_ort_model(
        CONFIG, [onnx_file(WINDOW), onnx_file(3)], num_threads=1)
    assert_same_tracks(
        inference_video(ort_model, frames, window=WINDOW, stride=STRIDE),
        inference_video(model, frames, window=WINDOW, stride=STRIDE))


def test_clip_wise_with_one_dynamic_frames_file(model, onnx_file):
    # one file traced with 3 frames serves the windows of 4, 4 and 3
    ort_model = init_ort_model(
        CONFIG, onnx_file(3, dynamic=True), num_threads=1)
    frames = moving_shapes(CLIP_WISE_FRAMES)
    assert_same_tracks(
        inference_video(ort_model, frames, window=WINDOW, stride=STRIDE),
        inference_video(model, frames, window=WINDOW, stride=STRIDE))


def test_clip_wise_needs_the_last_window_length(onnx_file):
    ort_model = init_ort_model(CONFIG, onnx_file(WINDOW))
    with pytest.raises(ValueError, match='no ONNX file for clips of 3'):
        inference_video(
            ort_model,
            moving_shapes(CLIP_WISE_FRAMES),
            window=WINDOW,
            stride=STRIDE)
