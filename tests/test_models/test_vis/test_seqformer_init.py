"""(d) SeqFormer weights in the all-additions model give SeqFormer's
outputs before any training step (docs/design.md §3a, §3b)."""
import copy
from pathlib import Path

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from test_mssts_vis import batch, draw_clip

import mmvis_msts  # noqa: F401

REPO = Path(__file__).resolve().parents[3]
SEQFORMER_MODE = REPO / 'configs/ablation/seqformer-mode.py'
ALL_ADDITIONS = REPO / 'configs/ablation/all-additions.py'
ADDITIONS = ('.msts_attn.', '.temporal_attn.', '.temporal_norm.',
             'discriminator.')


def build(config):
    register_all_modules(init_default_scope=True)
    model = MODELS.build(copy.deepcopy(Config.fromfile(str(config)).model))
    model.init_weights()
    return model.eval()


@pytest.fixture(scope='module')
def seqformer_checkpoint(tmp_path_factory):
    """A SeqFormer-mode model with random weights (every parameter moved
    off its init, so no zero-initialised layer hides a difference) and its
    checkpoint, as the converter writes one (``state_dict`` + ``meta``)."""
    torch.manual_seed(0)
    model = build(SEQFORMER_MODE)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    path = tmp_path_factory.mktemp('ckpt') / 'seqformer.pth'
    torch.save(dict(meta=dict(), state_dict=model.state_dict()), path)
    return model, path


def head_outputs(model, data):
    with torch.no_grad():
        return model.track_head(
            model.extract_feat(data['inputs']), data['data_samples'])


def loaded_all_additions(path):
    torch.manual_seed(1)  # other random weights than the SeqFormer model
    model = build(ALL_ADDITIONS)
    # the runner's load_from path: mmengine's loader, strict=False
    load_checkpoint(model, str(path), map_location='cpu', strict=False)
    return model


def test_additions_start_as_identity(seqformer_checkpoint):
    seqformer, path = seqformer_checkpoint
    model = loaded_all_additions(path)
    ckpt_keys = set(torch.load(path)['state_dict'])
    missing = set(model.state_dict()) - ckpt_keys
    # exactly the additions are missing, and nothing is left over
    assert missing and all(any(a in k for a in ADDITIONS) for k in missing)
    assert ckpt_keys <= set(model.state_dict())

    data = batch(model, [draw_clip(3, size=(64, 96))], training=False)
    ref, out = head_outputs(seqformer, data), head_outputs(model, data)
    for name in ('cls_scores', 'bbox_preds', 'mask_params', 'mask_centres',
                 'mask_feats'):
        torch.testing.assert_close(
            getattr(out, name), getattr(ref, name), rtol=0, atol=1e-6)
    inds = torch.arange(ref.cls_scores.size(2))
    torch.testing.assert_close(
        model.track_head.mask_logits(out, -1, torch.zeros_like(inds), inds),
        seqformer.track_head.mask_logits(ref, -1, torch.zeros_like(inds),
                                         inds),
        rtol=0,
        atol=1e-5)


def test_the_identity_check_has_teeth(seqformer_checkpoint):
    # with the temporal attention's output projection trained away from
    # zero, the same check sees a difference
    seqformer, path = seqformer_checkpoint
    model = loaded_all_additions(path)
    with torch.no_grad():
        for layer in model.track_head.decoder.layers:
            layer.temporal_attn.attn.out_proj.weight.normal_(std=0.1)
    data = batch(model, [draw_clip(3, size=(64, 96))], training=False)
    ref, out = head_outputs(seqformer, data), head_outputs(model, data)
    assert (out.bbox_preds - ref.bbox_preds).abs().max() > 1e-4
