"""Config edits that tools/train.py and tools/test.py make from arguments."""
import runpy

import pytest
from mmengine.config import Config
from tool_fixtures import REPO_ROOT

from mmvis_msts.utils import set_wrapper_type

TEST = runpy.run_path(str(REPO_ROOT / 'tools/test.py'))


def test_amp_switches_optim_wrapper():
    cfg = Config(dict(optim_wrapper=dict(type='OptimWrapper')))
    set_wrapper_type(cfg, 'AmpOptimWrapper', loss_scale='dynamic')
    assert cfg.optim_wrapper == dict(
        type='AmpOptimWrapper', loss_scale='dynamic')
    # already on: unchanged
    set_wrapper_type(cfg, 'AmpOptimWrapper', loss_scale='dynamic')
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    with pytest.raises(ValueError, match="'AmpOptimWrapper'"):
        set_wrapper_type(cfg, 'BF16OptimWrapper')
    with pytest.raises(ValueError, match='OptimWrapperDict'):
        set_wrapper_type(
            Config(dict(optim_wrapper=dict(type='OptimWrapperDict'))),
            'BF16OptimWrapper')


def test_bf16_switches_both_adversarial_wrappers():
    cfg = Config(
        dict(
            optim_wrapper=dict(
                constructor='VISAdversarialOptimWrapperConstructor',
                model=dict(type='OptimWrapper', clip_grad=dict(max_norm=1)),
                discriminator=dict(optimizer=dict(type='AdamW')))))
    set_wrapper_type(cfg, 'BF16OptimWrapper')
    assert cfg.optim_wrapper.model == dict(
        type='BF16OptimWrapper', clip_grad=dict(max_norm=1))
    assert cfg.optim_wrapper.discriminator == dict(
        type='BF16OptimWrapper', optimizer=dict(type='AdamW'))
    assert 'type' not in cfg.optim_wrapper


def test_out_sets_prefix_of_vis_metrics_only():
    cfg = Config(
        dict(test_evaluator=[
            dict(type='VISMetric'),
            dict(type='DumpResults', out_file_path='x.pkl')
        ]))
    TEST['set_outfile_prefix'](cfg, 'results/ytvis.json')
    assert cfg.test_evaluator[0].outfile_prefix == 'results/ytvis'
    assert 'outfile_prefix' not in cfg.test_evaluator[1]

    single = Config(dict(test_evaluator=dict(type='YouTubeVISMetric')))
    TEST['set_outfile_prefix'](single, 'results/ytvis')
    assert single.test_evaluator.outfile_prefix == 'results/ytvis'


@pytest.mark.parametrize('evaluator,out,message', [
    (dict(type='CocoMetric'), 'res', 'VISMetric'),
    (dict(type='VISMetric'), 'res.pkl', 'prefix'),
])
def test_out_errors(evaluator, out, message):
    with pytest.raises(ValueError, match=message):
        TEST['set_outfile_prefix'](Config(dict(test_evaluator=evaluator)), out)
