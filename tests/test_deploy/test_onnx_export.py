"""ONNX export of the tiny config, run in onnxruntime, against PyTorch.

The PyTorch model is the reference; the exported graph must give the same
head outputs (last decoder layer) on the clip it was exported for. The
model is built on NaN-filled memory (``deploy_fixtures.dirty_memory``): a
weight its constructor left uninitialised (``level_embed`` once was) gave
NaN in onnxruntime only after other tests had dirtied the heap.
"""
from itertools import chain

import pytest
import torch
from deploy_fixtures import CONFIG, H, W

onnx = pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')

from mmvis_msts import deploy  # noqa: E402 isort:skip

NUM_FRAMES = 3
# absolute, on the logits (|x| up to a few units) and on the normalised
# boxes in [0, 1]
ATOL = 1e-3


@pytest.fixture(scope='module')
def clip(model):
    return deploy.example_clip(model, NUM_FRAMES, (H, W), seed=1)


@pytest.fixture(scope='module')
def outputs(model, onnx_file, clip):
    """PyTorch's and onnxruntime's head outputs on ``clip``."""
    inputs, video = clip
    network = deploy.ORTClipNetwork(onnx_file(NUM_FRAMES))
    with torch.no_grad():
        ref = model.predict_head_outputs(inputs, [video])
    return ref, network(inputs, [video])


def test_model_has_no_uninitialised_weights(model):
    # built without init_weights, as init_model without a checkpoint
    tensors = chain(model.named_parameters(), model.named_buffers())
    for name, tensor in tensors:
        if tensor.is_floating_point():
            assert torch.isfinite(tensor).all(), name


def test_graph_matches_pytorch(outputs):
    ref, got = outputs
    for name in ('cls_scores', 'bbox_preds', 'mask_params', 'mask_centres',
                 'mask_feats', 'img_sizes'):
        torch.testing.assert_close(
            getattr(got, name)[-1],
            getattr(ref, name)[-1],
            atol=ATOL,
            rtol=0,
            msg=name)
    assert got.mask_feat_stride == ref.mask_feat_stride
    assert got.mask_out_stride == ref.mask_out_stride


def test_same_top_k_and_mask_logits(model, outputs):
    ref, got = (model.track_head.window_candidates(o) for o in outputs)
    assert torch.equal(got.query_inds, ref.query_inds)
    assert torch.equal(got.labels, ref.labels)
    torch.testing.assert_close(got.scores, ref.scores, atol=ATOL, rtol=0)
    torch.testing.assert_close(
        got.mask_logits, ref.mask_logits, atol=ATOL, rtol=0)
    torch.testing.assert_close(got.embeds, ref.embeds, atol=ATOL, rtol=0)


def test_graph_exports_the_last_layer_only(model, onnx_file):
    graph = onnx.load(onnx_file(NUM_FRAMES)).graph
    outputs = {out.name: out for out in graph.output}
    assert 'mlvl_memory' not in outputs  # the discriminator's input
    num_layers = outputs['cls_scores'].type.tensor_type.shape.dim[0]
    assert num_layers.dim_value == 1
    assert [i.name for i in graph.input] == ['inputs']


@pytest.mark.parametrize('num_frames', [5, 1])
def test_dynamic_frames_graph_matches_pytorch_at_other_lengths(
        model, onnx_file, num_frames):
    # traced with 3 frames, run with others
    path = onnx_file(NUM_FRAMES, dynamic=True)
    inputs, video = deploy.example_clip(model, num_frames, (H, W), seed=2)
    with torch.no_grad():
        ref = deploy.graph_outputs(model.predict_head_outputs(inputs, [video]))
    got = deploy.graph_outputs(deploy.ORTClipNetwork(path)(inputs, [video]))
    assert list(got) == list(ref)
    for name, want in ref.items():
        torch.testing.assert_close(
            got[name], want, atol=ATOL, rtol=0, msg=name)
    assert ref['mask_feats'].size(1) == num_frames


def test_dynamic_frames_graph_declares_the_frame_axis(onnx_file):
    graph = onnx.load(onnx_file(NUM_FRAMES, dynamic=True)).graph
    dims = {
        value.name:
        [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
        for value in (*graph.input, *graph.output)
    }
    assert dims['inputs'][:2] == [1, 'frames']
    assert dims['mask_feats'][1] == 'frames'  # (1, T, C_m, H_8, W_8)
    assert dims['img_sizes'][1] == 'frames'  # (1, T, 2)
    assert 'frames' not in dims['cls_scores']  # (1, 1, Q, K)


def test_two_dynamic_frames_files(onnx_file):
    path = onnx_file(NUM_FRAMES, dynamic=True)
    with pytest.raises(
            ValueError,
            match=f'{path} and {path} both take clips of any number'):
        deploy.ORTClipNetwork([path, path])


def test_missing_file():
    with pytest.raises(FileNotFoundError, match='nope.onnx does not exist'):
        deploy.ORTClipNetwork('nope.onnx')


def test_foreign_onnx_file(tmp_path):
    path = str(tmp_path / 'identity.onnx')
    torch.onnx.export(torch.nn.ReLU(), (torch.zeros(1), ), path, dynamo=False)
    with pytest.raises(ValueError, match=f'{path} has no .mmvis_msts.'):
        deploy.ORTClipNetwork(path)


def test_other_frame_count(model, onnx_file):
    path = onnx_file(NUM_FRAMES)
    inputs, video = deploy.example_clip(model, NUM_FRAMES + 1, (H, W))
    with pytest.raises(
            ValueError,
            match=f'no ONNX file for clips of {NUM_FRAMES + 1} frames '
            rf'\(have {path} \({NUM_FRAMES} frames\)\)'):
        deploy.ORTClipNetwork(path)(inputs, [video])


def test_other_frame_size(model, onnx_file):
    path = onnx_file(NUM_FRAMES)
    inputs, video = deploy.example_clip(model, NUM_FRAMES, (H, 2 * W))
    with pytest.raises(
            ValueError,
            match=f'{path} was exported for frames of {H}x{W} .* these '
            f'frames are {H}x{2 * W}'):
        deploy.ORTClipNetwork(path)(inputs, [video])


def test_other_number_of_classes(onnx_file):
    path = onnx_file(NUM_FRAMES)
    with pytest.raises(
            ValueError,
            match=f'{path} was exported for 4 classes .* num_classes=3'):
        deploy.init_ort_model(
            CONFIG,
            path,
            cfg_options={
                'model.track_head.num_classes': 3,
                'test_dataloader.dataset.metainfo':
                dict(classes=('a', 'b', 'c'))
            })


def test_old_opset(model, clip, tmp_path):
    with pytest.raises(ValueError, match='opset 15 is too old'):
        deploy.export_onnx(model, *clip, str(tmp_path / 'x.onnx'), opset=15)
