"""Every config builds; parameter counts match the released SeqFormer
weights, hand counts and the paper."""
import importlib.util
import json
import math
from pathlib import Path

import pytest
from mmdet.registry import DATASETS, MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config

import mmvis_msts  # noqa: F401

REPO = Path(__file__).resolve().parents[3]
CONFIG_ROOT = REPO / 'configs'
# configs of this project's method (MS-STS VIS and its SeqFormer base)
# (the ablation variants have their own test: tests/test_tools/test_ablation)
LEAF_CONFIGS = sorted(
    p for p in CONFIG_ROOT.rglob('*.py')
    if not {'_base_', 'benchmarks', 'ablation'}
    & set(p.relative_to(CONFIG_ROOT).parts))
# other methods' configs, kept to compare against on the same data
BENCHMARK_CONFIGS = sorted((CONFIG_ROOT / 'benchmarks').glob('*.py'))
MODEL_BASES = sorted((CONFIG_ROOT / '_base_' / 'models').glob('*.py'))
YOUTUBE_VIS_CLASSES = 40
SEQFORMER_SHAPES = REPO / 'tests/data/seqformer_r50_state_dict_shapes.json'
CUSTOM_IMPORTS = dict(imports=['mmvis_msts'], allow_failed_imports=False)


def _rel(path):
    return str(path.relative_to(CONFIG_ROOT))


def _load_count_params():
    spec = importlib.util.spec_from_file_location(
        'count_params', REPO / 'tools/analysis_tools/count_params.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module', autouse=True)
def registry_scope():
    register_all_modules(init_default_scope=True)


def _build(cfg):
    cfg.model.pop('init_cfg', None)
    cfg.model.backbone.init_cfg = None
    return MODELS.build(cfg.model)


def test_the_expected_configs_exist():
    names = {p.name for p in LEAF_CONFIGS}
    for name in ('msts-vis_r50_8xb1-12e_youtubevis2019.py',
                 'msts-vis_r50_8xb1-12e_youtubevis2021.py',
                 'msts-vis_r101_8xb1-12e_youtubevis2019.py',
                 'msts-vis_r101_8xb1-12e_youtubevis2021.py',
                 'msts-vis_swin-l-p4-w12_16xb1-12e_youtubevis2019.py',
                 'msts-vis_r50_8xb1-12e_coco-youtubevis2019.py',
                 'msts-vis_r18-tiny_1xb4-2k_synthetic.py',
                 'seqformer_r50_8xb1-12e_youtubevis2019.py',
                 'seqformer_r50_8xb1-12e_youtubevis2021.py'):
        assert name in names


@pytest.mark.parametrize('path', BENCHMARK_CONFIGS, ids=_rel)
def test_benchmark_config_builds(path):
    cfg = Config.fromfile(str(path))
    assert cfg.custom_imports == CUSTOM_IMPORTS
    assert _build(cfg).with_track_head


@pytest.mark.parametrize('path', LEAF_CONFIGS + MODEL_BASES, ids=_rel)
def test_config_builds(path):
    cfg = Config.fromfile(str(path))
    if path in LEAF_CONFIGS:
        assert cfg.custom_imports == CUSTOM_IMPORTS
    model = _build(cfg)
    assert type(model).__name__ == 'MSSTSVIS'
    head = model.track_head
    is_msts = 'msts-vis' in path.name
    # the three switches: MS-STS encoder, temporal decoder, discriminator
    assert type(head.encoder).__name__ == ('MSSTSEncoder'
                                           if is_msts else 'SeqFormerEncoder')
    assert type(head.decoder).__name__ == ('TemporalAttnDecoder'
                                           if is_msts else 'SeqFormerDecoder')
    assert model.with_discriminator == is_msts
    if path in LEAF_CONFIGS:
        dataset = cfg.test_dataloader.dataset
        if dataset.type == 'CheckedYouTubeVISDataset':
            num_classes = YOUTUBE_VIS_CLASSES
        else:
            num_classes = len(DATASETS.get(dataset.type).METAINFO['classes'])
        assert head.num_classes == num_classes
        if model.with_discriminator:
            assert cfg.optim_wrapper.constructor == \
                'VISAdversarialOptimWrapperConstructor'


def _numel(shapes, keep):
    return sum(math.prod(shape) for key, shape in shapes.items() if keep(key))


def seqformer_reference_counts(num_classes=YOUTUBE_VIS_CLASSES):
    """Parameters our SeqFormer R-50 must have, per component, from the
    state dict of the released SeqFormer weights (``SEQFORMER_SHAPES``).

    Four facts about the upstream model turn its state dict into our
    parameter list (none of them is taken from this project's code):

    1. ``running_mean``/``running_var`` of the backbone's BN are buffers,
       not parameters (its weight and bias are parameters here: frozen, but
       still ``nn.Parameter`` in mmdet's ``ResNet``).
    2. ``detr.transformer.decoder.bbox_embed`` is the module
       ``detr.bbox_embed`` itself (``with_box_refine`` assigns it), listed
       twice in the state dict but counted once by ``parameters()``.
    3. The encoder's ``self_attn.output_proj_box`` (``MSDeformAttn`` builds
       it in both modes) is never called by ``encode_forward``; our encoder
       does not build it.
    4. Upstream has 42 class logits (logit k is YouTube-VIS category k);
       we have one per class: each ``class_embed`` Linear(256, 42) becomes
       Linear(256, num_classes).

    The 48.40 M the fixture quotes are upstream's trainable parameters:
    without fact 4, with the unused ``output_proj_box`` and without the
    backbone BN's weight and bias (53,120 values, buffers of upstream's
    ``FrozenBatchNorm2d``).

    Returns:
        dict: ``backbone``, ``neck``, ``encoder``, ``decoder`` and ``total``
        parameter counts (48,059,457 in all).
    """
    with open(SEQFORMER_SHAPES) as f:
        shapes = json.load(f)['state_dict_shapes']
    shapes = {
        key: shape
        for key, shape in shapes.items()
        if not key.endswith(('.running_mean', '.running_var'))  # 1.
        and not key.startswith('detr.transformer.decoder.bbox_embed.')  # 2.
        and not ('.encoder.' in key and '.output_proj_box.' in key)  # 3.
    }
    for key, shape in shapes.items():
        if key.startswith('detr.class_embed.'):  # 4.
            shapes[key] = [num_classes, *shape[1:]]

    counts = dict(
        backbone=_numel(shapes, lambda k: k.startswith('detr.backbone.')),
        neck=_numel(shapes, lambda k: k.startswith('detr.input_proj.')),
        encoder=_numel(shapes,
                       lambda k: k.startswith('detr.transformer.encoder.')),
        decoder=_numel(shapes,
                       lambda k: k.startswith('detr.transformer.decoder.')),
        total=_numel(shapes, lambda k: True))
    return counts


def linear(cin, cout):
    return cin * cout + cout


def layer_norm(channels):
    return 2 * channels


def mha(channels):
    """nn.MultiheadAttention: packed q/k/v projection plus output Linear."""
    return 3 * linear(channels, channels) + linear(channels, channels)


def ffn(channels, hidden):
    return linear(channels, hidden) + linear(hidden, channels)


def conv(cin, cout, k, bias=True):
    return cin * cout * k * k + (cout if bias else 0)


# Hand counts (weights + biases; LN and GN: weight + bias per channel).
# torchvision documents ResNet-50 at 25,557,032 parameters, of which its
# 2048 x 1000 fc (absent here) holds 2,049,000
RESNET50_WITHOUT_FC = 25_557_032 - linear(2048, 1000)
# a SeqFormer encoder layer: MSDeformAttn (8 heads, 4 levels, 4 points:
# sampling_offsets, attention_weights, value_proj, output_proj), FFN 1024
# and 2 LN
SEQFORMER_ENCODER_LAYER = (
    linear(256, 8 * 4 * 4 * 2) + linear(256, 8 * 4 * 4) +
    2 * linear(256, 256) + ffn(256, 1024) + 2 * layer_norm(256))
# MSSTSAttention of msts-vis_r50.py (D = 256, d = 64, FFN 256), by the
# layout of its docstring: in_proj D -> d; intra-scale block (MHA, LN, FFN);
# inter-scale block (fine and coarse Linear d -> d, 2 LN, MHA, FFN);
# out_proj d -> D: 141,248 per layer.
MSSTS_PER_LAYER = (
    linear(256, 64) + (mha(64) + layer_norm(64) + ffn(64, 256)) +
    (2 * linear(64, 64) + 2 * layer_norm(64) + mha(64) + ffn(64, 256)) +
    linear(64, 256))
# temporal attention of a TemporalAttnDecoder layer: MHA(256) + its LN
TEMPORAL_ATTN_PER_LAYER = mha(256) + layer_norm(256)
# FgBgDiscriminator(in_channels=256, num_levels=3, channels=64,
# head_channels=(128, 256), GN with one group): 1x1 entries on the
# mask-conditioned levels [x * M, x * (1 - M), M], x = [frame, E_8] (259
# channels) or E_16 / E_32 (256); the stride-8 3x3 conv, two stride-2 3x3
# convs and two head convs (no bias, GN weight + bias); the 1-channel logits
# conv with bias.
DISCRIMINATOR = (
    conv(2 * 259 + 1, 64, 1, bias=False) +
    2 * conv(2 * 256 + 1, 64, 1, bias=False) + 3 * 2 * 64 + 3 *
    (conv(64, 64, 3, bias=False) + 2 * 64) + conv(64, 128, 3, bias=False) +
    2 * 128 + conv(128, 256, 3, bias=False) + 2 * 256 + conv(256, 1, 3))


def test_parameter_counts_match_the_references():
    count_params = _load_count_params()
    seqformer = count_params.component_counts(
        _build(
            Config.fromfile(
                str(CONFIG_ROOT / 'seqformer/seqformer_r50_8xb1-12e_'
                    'youtubevis2019.py'))))
    msts = count_params.component_counts(
        _build(
            Config.fromfile(
                str(CONFIG_ROOT / 'msts_vis/msts-vis_r50_8xb1-12e_'
                    'youtubevis2019.py'))))
    ref = seqformer_reference_counts()
    num_layers = 6

    # SeqFormer: exactly the released model's parameters
    assert seqformer['backbone'] == ref['backbone'] == RESNET50_WITHOUT_FC
    assert seqformer['neck'] == ref['neck']
    assert seqformer['track_head.encoder'] == ref['encoder'] == \
        num_layers * SEQFORMER_ENCODER_LAYER
    assert seqformer['track_head.decoder'] == ref['decoder']
    assert seqformer['total'] == ref['total']
    assert seqformer['discriminator (training only)'] == 0

    # MS-STS VIS: SeqFormer plus the hand-counted additions
    msts_encoder = ref['encoder'] + num_layers * MSSTS_PER_LAYER
    msts_decoder = ref['decoder'] + num_layers * TEMPORAL_ATTN_PER_LAYER
    msts_total = ref['total'] + (msts_encoder - ref['encoder']) + (
        msts_decoder - ref['decoder'])
    assert msts['backbone'] == ref['backbone']
    assert msts['neck'] == ref['neck']
    assert msts['track_head.encoder'] == msts_encoder
    assert msts['track_head.decoder'] == msts_decoder
    assert msts['total'] == msts_total  # 50,489,025
    assert msts['discriminator (training only)'] == DISCRIMINATOR
    # the paper reports 50.6 M for MS-STS VIS R-50 (inference, i.e.
    # without the discriminator) and gives no breakdown to match exactly
    assert abs(msts['total'] / 50.6e6 - 1) < 0.01

    table = count_params.format_table(['a', 'b'], [seqformer, msts])
    assert f'| total | {ref["total"] / 1e6:.2f} M | ' \
        f'{msts_total / 1e6:.2f} M |' in table
