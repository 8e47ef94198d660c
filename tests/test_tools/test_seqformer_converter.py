"""tools/model_converters/seqformer_to_mmvis.py on a SeqFormer-shaped dict.

The state dict is built from the key/shape list of the public SeqFormer R-50
model (tests/data/seqformer_r50_state_dict_shapes.json) with random values,
so every assertion below checks where a given SeqFormer tensor lands.
"""
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.runner import load_checkpoint

REPO_ROOT = Path(__file__).resolve().parents[2]
CONVERTER = REPO_ROOT / 'tools/model_converters/seqformer_to_mmvis.py'
PARITY = REPO_ROOT / 'tools/model_converters/check_seqformer_parity.py'
SHAPES = REPO_ROOT / 'tests/data/seqformer_r50_state_dict_shapes.json'
NUM_LAYERS = 6


def _load_converter():
    spec = importlib.util.spec_from_file_location('seqformer_to_mmvis',
                                                  CONVERTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


conv = _load_converter()


def random_seqformer_state_dict() -> dict:
    """Random tensors with the public SeqFormer R-50 keys and shapes.

    Matrices/kernels are scaled by 1/sqrt(fan-in) and BN variances kept
    positive so that a forward pass stays finite.
    """
    shapes = json.loads(SHAPES.read_text())['state_dict_shapes']
    gen = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in shapes.items():
        value = torch.randn(shape, generator=gen)
        if key.endswith('running_var'):
            value = value.abs() + 0.5
        elif len(shape) > 1:
            value = value / math.sqrt(value[0].numel())
        state[key] = value
    # with_box_refine: the decoder holds the very same box MLPs
    for key in shapes:
        if key.startswith('detr.transformer.decoder.bbox_embed.'):
            state[key] = state[key.replace('transformer.decoder.', '')]
    return state


@pytest.fixture(scope='module')
def seqformer():
    return random_seqformer_state_dict()


@pytest.fixture(scope='module')
def model():
    return conv.build_model(conv.DEFAULT_CONFIG)


def test_every_key_is_mapped_or_listed(seqformer, model):
    converted, report = conv.convert_for_model(seqformer, model)
    accounted = set(report['sources'].values()) | set(report['unused']) | set(
        report['aliases'])
    assert accounted == set(seqformer)
    # 6 encoder layers x output_proj_box (weight, bias)
    assert len(report['unused']) == 12
    assert all('encode' in r for r in report['unused'].values())
    # 6 layers x 3 linears x (weight, bias)
    assert len(report['aliases']) == 36
    # one counter per mmdet BatchNorm2d of the R-50 (stem + 16 blocks x 3 +
    # 4 downsample)
    assert len(report['added']) == 53
    assert report['unfilled'] == []
    assert set(converted) == set(model.state_dict())


def test_converted_checkpoint_loads_strictly_where_expected(
        seqformer, model, tmp_path):
    converted, report = conv.convert_for_model(seqformer, model)
    out = tmp_path / 'seqformer_mmvis.pth'
    conv.save_checkpoint(converted, report, str(out), 'in.pth',
                         conv.DEFAULT_CONFIG)
    ckpt = torch.load(out, weights_only=True)
    assert set(ckpt) == {'meta', 'state_dict'}
    assert ckpt['meta']['config'] == \
        'configs/seqformer/seqformer_r50_8xb1-12e_youtubevis2019.py'

    # the project's loading path (mmengine, torch's weights-only default)
    load_checkpoint(model, str(out), map_location='cpu', strict=True)
    head = model.track_head
    for layer in (0, NUM_LAYERS - 1):
        weight = seqformer[f'detr.class_embed.{layer}.weight']
        bias = seqformer[f'detr.class_embed.{layer}.bias']
        # SeqFormer logit k is YouTube-VIS category id k -> label k - 1
        for k in (1, 17, 40):
            assert torch.equal(head.cls_branches[layer].weight[k - 1],
                               weight[k])
            assert head.cls_branches[layer].bias[k - 1] == bias[k]
        assert head.cls_branches[layer].weight.shape == (40, 256)
    assert torch.equal(head.reg_branches[3].layers[2].weight,
                       seqformer['detr.bbox_embed.3.layers.2.weight'])
    assert torch.equal(head.query_embedding.weight,
                       seqformer['detr.query_embed.weight'])
    assert torch.equal(head.reference_points_fc.bias,
                       seqformer['detr.transformer.reference_points.bias'])
    dec = 'detr.transformer.decoder.layers.4.'
    assert torch.equal(head.decoder.layers[4].norms[1].weight,
                       seqformer[dec + 'norm1.weight'])
    assert torch.equal(head.decoder.layers[4].self_attn_box.attn.in_proj_bias,
                       seqformer[dec + 'self_attn_box.in_proj_bias'])
    assert torch.equal(
        head.encoder.layers[2].ffn.layers[1].weight,
        seqformer['detr.transformer.encoder.layers.2.linear2.'
                  'weight'])
    assert torch.equal(head.mask_head.branch.fuse_convs[0].weight,
                       seqformer['mask_head.lay3.weight'])
    assert torch.equal(head.mask_head.branch.out_convs[1].bias,
                       seqformer['mask_head.lay2.bias'])
    assert torch.equal(head.mask_head.controller.layers[2].weight,
                       seqformer['controller.layers.2.weight'])
    assert torch.equal(model.neck.convs[2].gn.weight,
                       seqformer['detr.input_proj.2.1.weight'])
    assert torch.equal(model.neck.extra_convs[0].conv.weight,
                       seqformer['detr.input_proj.3.0.weight'])
    body = 'detr.backbone.0.body.'
    assert torch.equal(model.backbone.layer3[5].bn2.running_var,
                       seqformer[body + 'layer3.5.bn2.running_var'])
    assert torch.equal(model.backbone.layer4[0].downsample[1].weight,
                       seqformer[body + 'layer4.0.downsample.1.weight'])
    assert model.backbone.bn1.num_batches_tracked == 0


def test_shape_mismatch_names_the_key(seqformer, model):
    bad = dict(seqformer)
    key = 'detr.transformer.encoder.layers.2.linear1.weight'
    bad[key] = torch.zeros(512, 256)
    with pytest.raises(conv.ConversionError) as err:
        conv.convert_for_model(bad, model)
    message = str(err.value)
    assert 'track_head.encoder.layers.2.ffn.layers.0.0.weight' in message
    assert key in message and '(512, 256)' in message


@pytest.mark.parametrize(
    'edit, message', [
        (lambda sd: sd.update(
            {'detr.backbone.0.body.fc.weight': torch.zeros(2, 2)}),
         'detr.backbone.0.body.fc.weight'),
        (lambda sd: sd.update({
            'detr.transformer.decoder.bbox_embed.2.layers.0.bias':
            torch.zeros(256)
        }), 'tensors differ'),
        (lambda sd:
         [sd.pop(k)
          for k in list(sd) if k.startswith('controller.')], '--masks'),
        (lambda sd: sd.update(
            {'detr.class_embed.0.weight': torch.zeros(30, 256)}),
         'at least 41'),
    ],
    ids=['unknown-key', 'alias-mismatch', 'no-mask-head', 'few-logits'])
def test_bad_seqformer_dicts_are_refused(seqformer, edit, message):
    bad = dict(seqformer)
    edit(bad)
    with pytest.raises(conv.ConversionError, match=message):
        conv.convert(bad)


def test_skip_classifier_needs_partial(seqformer, model):
    with pytest.raises(conv.ConversionError, match='--partial'):
        conv.convert_for_model(seqformer, model, skip_classifier=True)
    converted, report = conv.convert_for_model(
        seqformer, model, skip_classifier=True, partial=True)
    assert sorted(report['unfilled']) == sorted(
        f'track_head.cls_branches.{i}.{p}' for i in range(NUM_LAYERS)
        for p in ('weight', 'bias'))
    assert report['class_rows'] == 'skipped'


@pytest.mark.parametrize(
    'content, message', [
        (b'not a checkpoint', 'not a weights-only loadable torch checkpoint'),
        ({
            'state_dict': {
                'backbone.conv1.weight': torch.zeros(1)
            }
        }, 'mmengine checkpoint already'),
        ({
            'model': {
                'backbone.conv1.weight': torch.zeros(1)
            }
        }, 'not a SeqFormer checkpoint'),
        ([torch.zeros(1)], 'not a SeqFormer checkpoint dict'),
    ],
    ids=['garbage', 'mmengine', 'other-model', 'list'])
def test_non_seqformer_files_are_refused(tmp_path, content, message):
    in_file = tmp_path / 'in.pth'
    if isinstance(content, bytes):
        in_file.write_bytes(content)
    else:
        torch.save(content, in_file)
    with pytest.raises(conv.ConversionError, match=message):
        conv.load_seqformer_state_dict(str(in_file))


def test_cli_exits_with_the_reason(tmp_path):
    in_file = tmp_path / 'in.pth'
    torch.save({'model': {'backbone.conv1.weight': torch.zeros(1)}}, in_file)
    out_file = tmp_path / 'out.pth'
    proc = subprocess.run(
        [sys.executable,
         str(CONVERTER),
         str(in_file),
         str(out_file)],
        capture_output=True,
        text=True,
        timeout=120)
    assert proc.returncode != 0
    assert f'error: {in_file} is not a SeqFormer checkpoint' in proc.stderr
    assert not out_file.exists()


def _load_parity_checker():
    spec = importlib.util.spec_from_file_location('check_seqformer_parity',
                                                  PARITY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_parity_checker_aligns_seqformer_outputs(seqformer, model):
    """The checker's row/axis alignment, on a reference built from ours."""
    parity = _load_parity_checker()
    converted, _ = conv.convert_for_model(seqformer, model)
    model.load_state_dict(converted, strict=True)
    model.eval()
    gen = torch.Generator().manual_seed(1)
    # 2 frames of 48x64 content padded to 64x64
    inputs = torch.zeros(2, 3, 64, 64)
    inputs[:, :, :48] = torch.randn(2, 3, 48, 64, generator=gen)
    ours = parity.run_project_model(model, inputs, (48, 64))
    assert ours['cls_scores'].shape == (300, 40)
    assert ours['bbox_preds'].shape == (2, 300, 4)
    assert ours['mask_logits'].shape == (300, 2, 16, 16)
    assert ours['memory'].shape == (2, 8 * 8 + 4 * 4 + 2 * 2 + 1, 256)
    assert all(v.isfinite().all() for v in ours.values())
    # SeqFormer layout: logit k = category id k, rows 0 and 41 unused
    logits = torch.cat([
        torch.full((300, 1), 50.), ours['cls_scores'],
        torch.full((300, 1), 50.)
    ], 1)
    reference = dict(
        inputs=inputs,
        img_shape=torch.tensor([48, 64]),
        pred_logits=logits,
        pred_boxes=ours['bbox_preds'].clone(),
        pred_masks=ours['mask_logits'].clone())
    diffs = parity.compare(reference, ours)
    assert set(diffs) == {'class_logits', 'boxes', 'mask_logits'}
    assert all(diff == 0 for diff, _ in diffs.values())
    reference['pred_boxes'][1, 7, 2] += 0.5
    assert parity.compare(reference, ours)['boxes'][0] == pytest.approx(0.5)
