"""The main job's configs build, train one step and predict whole videos.

Runs in-process on a tiny generated synthetic set, so the tiny MS-STS config
of tools/run_main_job.sh (and the Mask2Former-VIS anchor of its benchmark)
cannot rot without a test failing. No timing is asserted.
"""
import ast
import copy
from pathlib import Path

import pytest
import torch
from mmdet.registry import DATASETS, MODELS
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapperDict, build_optim_wrapper
from mmengine.registry import init_default_scope

from mmvis_msts.datasets.synthetic import (SyntheticVISSettings,
                                           generate_dataset)

REPO_ROOT = Path(__file__).resolve().parents[2]
MSTS_CONFIG = REPO_ROOT / \
    'configs/msts_vis/msts-vis_r18-tiny_1xb4-2k_synthetic.py'
M2F_CONFIG = REPO_ROOT / \
    'configs/benchmarks/mask2former-vis_r18-tiny_1xb4-2k_synthetic.py'


@pytest.fixture(scope='module')
def data_root(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp('main_job') / 'synthetic_vis'
    generate_dataset(
        SyntheticVISSettings(
            num_train=2, num_val=1, num_frames=(4, 5), num_instances=(2, 2)),
        str(root),
        progress=False)
    return str(root) + '/'


def load(config: Path, data_root: str) -> Config:
    cfg = Config.fromfile(str(config))
    init_default_scope(cfg.default_scope)
    for loader in ('train_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
    return cfg


def train_and_predict(cfg: Config):
    """One train_step on 2 clips, then predict the first test video."""
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    train_set = DATASETS.build(cfg.train_dataloader.dataset)
    test_set = DATASETS.build(cfg.test_dataloader.dataset)
    optim_wrapper = build_optim_wrapper(model,
                                        copy.deepcopy(cfg.optim_wrapper))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    log_vars = model.train_step(
        pseudo_collate([train_set[0], train_set[1]]), optim_wrapper)
    model.eval()
    with torch.no_grad():
        result = model.test_step(pseudo_collate([test_set[0]]))[0]
    changed = [
        k for k, v in model.state_dict().items()
        if v.dtype.is_floating_point and not torch.equal(v, before[k])
    ]
    return model, optim_wrapper, log_vars, result, changed, test_set[0]


def test_msts_main_job_config(data_root):
    cfg = load(MSTS_CONFIG, data_root)
    # the main job is MS-STS: all three additions stay on
    head = cfg.model.track_head
    assert head.encoder.type == 'MSSTSEncoder'
    assert head.decoder.type == 'TemporalAttnDecoder'
    assert cfg.model.discriminator.type == 'FgBgDiscriminator'
    assert cfg.train_cfg.type == 'IterBasedTrainLoop'
    model, optim_wrapper, log_vars, result, changed, video = \
        train_and_predict(cfg)

    assert isinstance(optim_wrapper, OptimWrapperDict)
    # iteration 0 is in D's warm-up: D learns, the generator term is off
    assert cfg.model.loss_adv.warmup_iters > 0
    assert 'loss_adv' not in log_vars and log_vars['adv_weight'] == 0
    for key in ('loss', 'loss_cls', 'loss_dice', 'loss_disc', 'disc_acc_real',
                'disc_acc_fake', 'disc_margin'):
        assert torch.isfinite(torch.as_tensor(log_vars[key])), key
    # the step updated the backbone, the head and the discriminator
    for prefix in ('backbone.', 'track_head.', 'discriminator.'):
        assert any(k.startswith(prefix) for k in changed), prefix

    # whole video in one pass: one prediction per frame, at most
    # max_per_video tracks, masks at the original frame size
    frames = result.video_data_samples
    num_frames = len(video['data_samples'])
    assert len(frames) == num_frames
    max_per_video = cfg.model.track_head.test_cfg.max_per_video
    for frame in frames:
        pred = frame.pred_track_instances
        assert len(pred) <= max_per_video
        assert tuple(pred.masks.shape[1:]) == tuple(frame.ori_shape)
        assert ((pred.scores >= 0) & (pred.scores <= 1)).all()
        assert (pred.labels < cfg.num_classes).all()


def test_mask2former_benchmark_config(data_root):
    cfg = load(M2F_CONFIG, data_root)
    assert cfg.model.type == 'Mask2FormerVideo'
    assert cfg.model.track_head.num_queries == 10
    assert cfg.model.track_head.transformer_decoder.num_layers == 3
    _, _, log_vars, result, changed, video = train_and_predict(cfg)
    assert torch.isfinite(torch.as_tensor(log_vars['loss']))
    assert any(k.startswith('backbone.') for k in changed)
    assert len(result.video_data_samples) == len(video['data_samples'])


# What the main-job benchmark compares the two models on; every entry comes
# from the shared bases (backbones/resnet18-tiny.py, datasets/synthetic_vis.py,
# schedules/schedule_2k.py), none from the two configs themselves.
SHARED_KEYS = ('train_dataloader', 'val_dataloader', 'test_dataloader',
               'val_evaluator', 'test_evaluator', 'train_cfg', 'val_cfg',
               'test_cfg', 'param_scheduler', 'default_hooks', 'log_processor',
               'env_cfg', 'randomness')


def assigned_names(config: Path) -> set:
    """The top-level names a config file assigns itself (not its bases)."""
    tree = ast.parse(config.read_text())
    return {
        target.id
        for node in tree.body if isinstance(node, ast.Assign)
        for target in node.targets if isinstance(target, ast.Name)
    }


def test_the_benchmark_configs_share_their_budget_by_construction():
    for config in (MSTS_CONFIG, M2F_CONFIG):
        restated = assigned_names(config) & set(SHARED_KEYS + (
            'train_pipeline', 'test_pipeline', 'num_clip_frames', 'img_scale',
            'max_iters', 'base_lr', 'warmup_iters'))
        assert not restated, (config.name, restated)
    msts, m2f = (Config.fromfile(str(c)) for c in (MSTS_CONFIG, M2F_CONFIG))
    for key in SHARED_KEYS:
        assert msts.get(key) == m2f.get(key), key
    # the same clips: the clip sampler and the video head agree on length
    num_frames = msts.train_dataloader.dataset.pipeline[0].num_frames
    assert m2f.model.track_head.num_frames == num_frames
    # one optimiser: MS-STS's model part is the anchor's plus its own lr
    # multipliers; the discriminator gets the same AdamW at twice the lr
    model_optim = dict(msts.optim_wrapper.model)
    assert set(model_optim.pop('paramwise_cfg')) == {'custom_keys'}
    assert model_optim == m2f.optim_wrapper
    m2f_optimizer = m2f.optim_wrapper.optimizer
    assert msts.optim_wrapper.discriminator == dict(
        type='OptimWrapper',
        optimizer=dict(m2f_optimizer, lr=2 * m2f_optimizer.lr))
    # one backbone (the same weights) and input padding; only the returned
    # stages and their strides differ: Mask2Former's pixel decoder takes
    # all 4 at strides 4-32, MS-STS stages 3-4 at strides 8 and 16
    # (test_msts_backbone_stage_strides)
    msts_backbone = dict(msts.model.backbone, out_indices=None, strides=None)
    m2f_backbone = dict(m2f.model.backbone, out_indices=None, strides=None)
    assert msts_backbone == m2f_backbone
    assert 'strides' not in m2f.model.backbone
    assert msts.model.data_preprocessor == m2f.model.data_preprocessor


def test_msts_backbone_stage_strides():
    """Stages 1-4 at strides 4/4/8/16; stages 3 and 4 go to the neck."""
    model_cfg = Config.fromfile(str(MSTS_CONFIG)).model
    backbone = dict(model_cfg.backbone, out_indices=(0, 1, 2, 3))
    init_default_scope('mmdet')
    model = MODELS.build(backbone)
    model.eval()  # mmdet's ResNet.train() returns None, so not chained
    with torch.no_grad():
        maps = model(torch.zeros(1, 3, 80, 128))
    # a hand count: the deep stem and its max-pool halve twice (20x32),
    # stage 2 keeps that, stages 3 and 4 halve
    assert [tuple(m.shape[2:]) for m in maps] == [(20, 32), (20, 32), (10, 16),
                                                  (5, 8)]
    assert [m.shape[1] for m in maps] == [32, 64, 128, 256]
    assert [maps[i].shape[1] for i in model_cfg.backbone.out_indices
            ] == list(model_cfg.neck.in_channels)
