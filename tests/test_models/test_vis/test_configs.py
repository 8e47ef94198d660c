"""Every config builds; parameter counts match the paper's and SeqFormer's."""
import importlib.util
from pathlib import Path

import pytest
from mmdet.registry import DATASETS, MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config

import mmvis_msts  # noqa: F401

REPO = Path(__file__).resolve().parents[3]
CONFIG_ROOT = REPO / 'configs'
# configs of this project's method (MS-STS VIS and its SeqFormer base)
LEAF_CONFIGS = sorted(
    p for p in CONFIG_ROOT.rglob('*.py')
    if not {'_base_', 'benchmarks'} & set(p.relative_to(CONFIG_ROOT).parts))
# other methods' configs, kept to compare against on the same data
BENCHMARK_CONFIGS = sorted((CONFIG_ROOT / 'benchmarks').glob('*.py'))
MODEL_BASES = sorted((CONFIG_ROOT / '_base_' / 'models').glob('*.py'))
YOUTUBE_VIS_CLASSES = 40
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
        if dataset.type == 'YouTubeVISDataset':
            num_classes = YOUTUBE_VIS_CLASSES
        else:
            num_classes = len(DATASETS.get(dataset.type).METAINFO['classes'])
        assert head.num_classes == num_classes
        if model.with_discriminator:
            assert cfg.optim_wrapper.constructor == \
                'VISAdversarialOptimWrapperConstructor'


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
    # public SeqFormer R-50 (6/6 layers, 42 logits): 48.40 M
    assert abs(seqformer['total'] / 48.40e6 - 1) < 0.01
    # paper: MS-STS VIS R-50 50.6 M (inference; discriminator excluded)
    assert abs(msts['total'] / 50.6e6 - 1) < 0.03
    assert seqformer['discriminator (training only)'] == 0
    assert msts['discriminator (training only)'] > 0
    assert msts['total'] == sum(v for k, v in msts.items()
                                if k not in ('total',
                                             'discriminator (training only)'))
    table = count_params.format_table(['a', 'b'], [seqformer, msts])
    assert '| total | 48.06 M | 50.49 M |' in table
