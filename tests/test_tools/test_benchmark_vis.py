"""tools/analysis_tools/benchmark_vis.py on the tiny configs, tiny input."""
import json
import statistics
import sys
from pathlib import Path
from typing import Iterator

import pytest
import torch
from mmengine.logging import MMLogger

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / 'tools' / 'analysis_tools'))

import benchmark_vis as bv  # noqa: E402

TASKS = ('infer2', 'train2')
ARGS = [
    '--preset', 'tiny', '--size', '64', '96', '--tasks', *TASKS, '--repeats',
    '1', '--warmup', '0', '--threads', '1', '--train-clips', '2'
]


@pytest.fixture(scope='module')
def bench_dir(tmp_path_factory) -> Iterator[Path]:
    """One run: both tiny models, 64x96, T=2 (training: batches of 2
    clips), one round, no warm-up."""
    out = tmp_path_factory.mktemp('benchmark_vis')
    # the tool sets the thread count and quietens the logger: put them back
    threads = torch.get_num_threads()
    logger = MMLogger.get_current_instance()
    level = logger.level
    try:
        bv.main(ARGS + ['--out-dir', str(out)])
        yield out
    finally:
        torch.set_num_threads(threads)
        logger.setLevel(level)


def test_every_model_and_task_is_timed(bench_dir):
    results = json.loads((bench_dir / 'benchmark_vis.json').read_text())
    assert set(results['runs']) == set(TASKS)
    for task in TASKS:
        summary = results['summary'][task]
        assert set(summary['models']) == {'msts', 'm2f'}
        for name, row in summary['models'].items():
            run = results['runs'][task][name]
            assert len(run['seconds']) == 1 and run['seconds'][0] > 0
            assert row['median_s'] > 0 and row['frames_per_s'] > 0
            assert 0 < row['backbone_share']
        # the ratio is the ratio of the medians
        ratio = summary['ratios']['msts/m2f']['speed_ratio']
        medians = {
            name: statistics.median(run['seconds'])
            for name, run in results['runs'][task].items()
        }
        assert ratio == pytest.approx(medians['m2f'] / medians['msts'])
    table = (bench_dir / 'benchmark_vis.md').read_text()
    assert '| train2 | MS-STS VIS vs Mask2Former-VIS |' in table
    assert results['settings']['train_clips'] == 2
    assert 'a batch of 2 clip(s)' in table


def test_a_finished_run_is_read_not_rerun(bench_dir):
    before = (bench_dir / 'benchmark_vis.json').read_text()
    # every round is done: nothing is measured again, the figures stay
    results = bv.main(ARGS + ['--out-dir', str(bench_dir)])
    assert results['runs'] == json.loads(before)['runs']
    # other settings are refused rather than mixed in
    with pytest.raises(SystemExit, match='--restart'):
        bv.main([
            '--preset', 'tiny', '--size', '32', '48', '--tasks', *TASKS,
            '--out-dir',
            str(bench_dir)
        ])


def test_bad_arguments_are_named():
    with pytest.raises(SystemExit):
        bv.parse_args(['--tasks', 'infer'])
    with pytest.raises(SystemExit):
        bv.parse_args(['--preset', 'tiny', '--models', 'seqformer'])
    assert bv.parse_task('infer36') == ('infer', 36)


def test_a_variant_is_its_model_with_options():
    args = bv.parse_args(['--preset', 'tiny', '--models', 'msts_apart'])
    results = dict(models={})
    bench = bv.Benches(args, results)['msts_apart']
    assert bench.config == bv.PRESETS['tiny']['msts']
    assert bench.model.loss_adv.clip_apart is True
    assert results['models']['msts_apart']['cfg_options'] == {
        'model.loss_adv.clip_apart': True
    }
    # the default run leaves variants out
    assert bv.parse_args(['--preset', 'tiny']).models == ['msts', 'm2f']


def test_the_issue13_variant_is_the_config_before_round_4():
    args = bv.parse_args(['--preset', 'tiny', '--models', 'msts_issue13'])
    bench = bv.Benches(args, dict(models={}))['msts_issue13']
    # the main-job config before commit 28fec42: stages 2-4 at strides
    # 8/16/32 into a neck of 64/128/256 channels, the update after the clip
    model = bench.model
    assert model.backbone.strides == (1, 2, 2, 2)
    assert model.backbone.out_indices == (1, 2, 3)
    assert model.loss_adv.clip_apart is True
    # and the discriminator of then (test_the_d8_variant_...)
    assert model.discriminator.mask_stride_entry is None
    assert model.loss_adv.loss_weight == 0.1
    frames = torch.zeros(2, 3, 64, 96)
    feats = model.neck(model.backbone(frames))
    # 4 levels at strides 8, 16, 32, 64
    assert [f.shape[-2:] for f in feats] == [(8, 12), (4, 6), (2, 3), (1, 2)]
    # the options are the tiny backbone's, so R-50 does not offer it
    with pytest.raises(SystemExit):
        bv.parse_args(['--preset', 'r50', '--models', 'msts_issue13'])
    assert ('msts_bf16',
            'msts_issue13') in bv.pairs_of(['msts_bf16', 'msts_issue13'])


def test_the_d8_variant_is_the_discriminator_before_its_mask_stride_entry():
    args = bv.parse_args(['--preset', 'tiny', '--models', 'msts', 'msts_d8'])
    benches = bv.Benches(args, dict(models={}))
    today, before = benches['msts'], benches['msts_d8']
    # today's main-job config: the entry, a fifth of the generator weight,
    # D at twice the model's lr; the variant: none of the three
    assert today.model.discriminator.mask_stride_entry is not None
    assert before.model.discriminator.mask_stride_entry is None
    assert (today.model.loss_adv.loss_weight,
            before.model.loss_adv.loss_weight) == (0.02, 0.1)
    assert [
        b.cfg.optim_wrapper.discriminator.optimizer.lr
        for b in benches.values()
    ] == [2e-3, 1e-3]
    # everything else is the same model
    assert today.model.backbone.strides == before.model.backbone.strides
    assert ('msts_bf16',
            'msts_d8_bf16') in bv.pairs_of(['msts_bf16', 'msts_d8_bf16'])


def test_the_round5_variant_runs_stage_2_at_stride_8():
    args = bv.parse_args(['--preset', 'tiny', '--models', 'msts_round5'])
    backbone = bv.Benches(args, dict(models={}))['msts_round5'].model.backbone
    backbone.out_indices = (0, 1, 2, 3)  # every stage, for the count below
    with torch.no_grad():
        sizes = [
            tuple(m.shape[-2:]) for m in backbone(torch.zeros(1, 3, 64, 96))
        ]
    # a hand count: stem and max-pool at stride 4 (16x24), stage 2 halves,
    # stage 3 keeps, stage 4 halves (the main job's config: stage 2 keeps)
    assert sizes == [(16, 24), (8, 12), (8, 12), (4, 6)]
    assert ('msts_round5_bf16',
            'msts_bf16') in bv.pairs_of(['msts_bf16', 'msts_round5_bf16'])


def test_a_bf16_model_runs_in_bfloat16_autocast():
    args = bv.parse_args(
        ['--preset', 'tiny', '--models', 'msts', 'msts_bf16', 'm2f_bf16'])
    results = dict(models={})
    benches = bv.Benches(args, results)
    bench = benches['msts_bf16']
    assert bench.bf16 and not benches['msts'].bf16
    assert results['models']['msts_bf16']['autocast'] == 'bfloat16'
    frames = torch.zeros(2, 3, 64, 96)
    feats = bench.backbone(frames, training=False)
    assert all(f.dtype == torch.bfloat16 for f in feats)
    bench.train(bv.synthetic_clip(2, 64, 96, with_gt=True), adv_iter=None)
    assert bench.model.track_head.autocast is False  # the tiny config's
    wrappers = bench.optim_wrapper
    assert {type(wrappers[k]).__name__
            for k in ('model', 'discriminator')} == {'BF16OptimWrapper'}
    assert bv.pairs_of(['msts', 'msts_bf16',
                        'm2f_bf16']) == [('msts_bf16', 'msts')]
    assert bv.model_label('m2f_bf16') == 'Mask2Former-VIS (bf16)'


def test_model_names_take_their_suffixes_in_order():
    assert bv.parse_model_name('msts_bf16_compile') == ('msts', True, True,
                                                        None)
    assert bv.parse_model_name('msts_apart') == ('msts_apart', False, False,
                                                 None)
    assert bv.parse_model_name('msts_bf16_t2') == ('msts', True, False, 2)
    assert bv.model_label('msts_bf16_compile') == \
        'MS-STS VIS (bf16, compiled)'
    # each suffixed model is paired with the name without its last suffix
    assert bv.pairs_of(
        ['msts', 'msts_compile', 'msts_bf16',
         'msts_bf16_compile']) == [('msts_compile', 'msts'),
                                   ('msts_bf16', 'msts'),
                                   ('msts_bf16_compile', 'msts_bf16')]
    with pytest.raises(SystemExit):
        bv.parse_args(['--preset', 'tiny', '--models', 'msts_compile_bf16'])
    with pytest.raises(SystemExit):  # the compiling call would be timed
        bv.parse_args(
            ['--preset', 'tiny', '--models', 'msts_compile', '--warmup', '0'])


def test_a_threads_suffix_runs_its_model_with_that_many_threads(
        tmp_path, monkeypatch):
    assert bv.model_label('msts_bf16_t2') == 'MS-STS VIS (bf16, 2 threads)'
    assert bv.pairs_of(['msts_bf16',
                        'msts_bf16_t2']) == [('msts_bf16_t2', 'msts_bf16')]
    with pytest.raises(SystemExit):
        bv.parse_args(['--preset', 'tiny', '--models', 'msts_t0'])
    seen = []
    monkeypatch.setattr(
        bv.Bench, 'infer', lambda self, data: seen.append(
            (self.name, torch.get_num_threads())))
    threads = torch.get_num_threads()
    logger = MMLogger.get_current_instance()
    level = logger.level
    try:
        bv.main([
            '--preset', 'tiny', '--size', '32', '48', '--tasks', 'infer1',
            '--models', 'msts', 'msts_t2', '--repeats', '2', '--warmup', '0',
            '--threads', '1', '--out-dir',
            str(tmp_path)
        ])
    finally:
        torch.set_num_threads(threads)
        logger.setLevel(level)
    # interleaved, each call at its model's count (back to 1 after 2)
    assert seen == [('msts', 1), ('msts_t2', 2)] * 2


def test_a_compile_model_is_built_compiled():
    # building compiles nothing yet (dynamo compiles at the first call): the
    # equivalence with the eager model is tests/test_apis' compile test
    args = bv.parse_args([
        '--preset', 'tiny', '--models', 'msts_bf16_compile',
        '--compile-backend', 'aot_eager', '--compile-mode', 'max-autotune'
    ])
    results = dict(models={})
    bench = bv.Benches(args, results)['msts_bf16_compile']
    assert bench.bf16 and bench.model.backbone._compiled_call_impl is not None
    info = results['models']['msts_bf16_compile']
    assert info['compiled'] == dict(
        backend='aot_eager', mode='max-autotune', parts=bench.compiled)
    assert 'track_head.encoder' in bench.compiled
