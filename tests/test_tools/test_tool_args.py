"""Config edits that tools/train.py and tools/test.py make from arguments."""
import runpy

import pytest
from mmengine.config import Config
from tool_fixtures import REPO_ROOT

TRAIN = runpy.run_path(str(REPO_ROOT / 'tools/train.py'))
TEST = runpy.run_path(str(REPO_ROOT / 'tools/test.py'))


def test_amp_switches_optim_wrapper():
    cfg = Config(dict(optim_wrapper=dict(type='OptimWrapper')))
    TRAIN['enable_amp'](cfg)
    assert cfg.optim_wrapper == dict(
        type='AmpOptimWrapper', loss_scale='dynamic')
    TRAIN['enable_amp'](cfg)  # already on: unchanged
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    with pytest.raises(ValueError, match='OptimWrapperDict'):
        TRAIN['enable_amp'](
            Config(dict(optim_wrapper=dict(type='OptimWrapperDict'))))


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
