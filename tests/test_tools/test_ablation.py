"""tools/analysis_tools/ablation.py: variant configs, budget, results."""
import importlib.util
import json
from pathlib import Path

import pytest
from mmengine.config import Config

REPO = Path(__file__).resolve().parents[2]
MAIN_JOB = REPO / 'configs/msts_vis/msts-vis_r18-tiny_1xb4-2k_synthetic.py'


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        'ablation', REPO / 'tools/analysis_tools/ablation.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ablation = _load_tool()
# what each variant has on: MS-STS encoder, temporal decoder, discriminator
ADDITIONS = {
    'seqformer-mode': (False, False, False),
    'msts-encoder': (True, False, False),
    'temporal-decoder': (False, True, False),
    'discriminator': (False, False, True),
    'all-additions': (True, True, True),
    'no-temporal-decoder': (True, False, True),
}


def test_variants_differ_from_seqformer_mode_in_their_addition_only():
    assert set(ablation.VARIANTS) == set(ADDITIONS)
    main = Config.fromfile(str(MAIN_JOB))
    for variant, (enc, dec, disc) in ADDITIONS.items():
        cfg = Config.fromfile(ablation.config_path(variant))
        head, main_head = cfg.model.track_head, main.model.track_head
        assert (head.encoder.type == 'MSSTSEncoder') == enc, variant
        assert (head.decoder.type == 'TemporalAttnDecoder') == dec, variant
        assert (cfg.model.discriminator is not None) == disc, variant
        # an addition that is on is the main job's, exactly
        if enc:
            assert head.encoder == main_head.encoder
        if dec:
            assert head.decoder == main_head.decoder
        if disc:
            assert cfg.model.discriminator == main.model.discriminator
            assert cfg.optim_wrapper == main.optim_wrapper
        else:
            assert cfg.optim_wrapper == main.optim_wrapper.model
        # everything else is the main job's, the two SeqFormer deviations
        # included
        for key in set(head) - {'encoder', 'decoder'}:
            assert head[key] == main_head[key], (variant, key)
        assert head.supervise_absent_boxes is False
        assert head.train_cfg.assigner.match_costs[1] == dict(
            type='ClipBBoxL2Cost', weight=5.0, normalize_valid_frames=True)
        for key in ('backbone', 'neck', 'data_preprocessor'):
            assert cfg.model[key] == main.model[key], (variant, key)
        for key in ('train_dataloader', 'test_dataloader', 'param_scheduler',
                    'train_cfg', 'randomness'):
            assert cfg[key] == main[key], (variant, key)


def test_budget_rescales_the_whole_schedule():
    args = ablation.parse_args(
        ['--work-dir', 'x', '--iters', '500', '--data-root', 'data/hard'])
    cfg = ablation.build_config('all-additions', 3, 'wd', args)
    # schedule_2k: 100 warm-up iterations then cosine to 2,000 -> x 1/4
    warmup, cosine = cfg.param_scheduler
    assert (warmup.begin, warmup.end) == (0, 25)
    assert (cosine.begin, cosine.end, cosine.T_max) == (25, 500, 475)
    assert cfg.train_cfg.max_iters == 500
    assert cfg.default_hooks.checkpoint.interval == 500
    # the main job's D warm-up 300 and ramp 200 of 2,000 -> 75 and 50
    assert (cfg.model.loss_adv.warmup_iters,
            cfg.model.loss_adv.ramp_iters) == (75, 50)
    assert cfg.randomness.seed == 3
    assert cfg.train_dataloader.dataset.data_root == 'data/hard/'
    assert cfg.test_dataloader.dataset.data_root == 'data/hard/'
    assert cfg.val_dataloader is None  # tested once, after training
    # a budget of a few iterations keeps every interval non-empty
    tiny = ablation.build_config(
        'seqformer-mode', 0, 'wd',
        ablation.parse_args(['--work-dir', 'x', '--iters', '4']))
    for scheduler in tiny.param_scheduler:
        assert scheduler.end > scheduler.begin


def test_bf16_switches_both_optim_wrappers_and_is_a_setting():
    plain = ablation.parse_args(['--work-dir', 'x'])
    bf16 = ablation.parse_args(['--work-dir', 'x', '--bf16'])
    cfg = ablation.build_config('all-additions', 0, 'wd', bf16)
    # the model's and the discriminator's wrappers, as tools/train.py --bf16
    assert cfg.optim_wrapper.model.type == 'BF16OptimWrapper'
    assert cfg.optim_wrapper.discriminator.type == 'BF16OptimWrapper'
    fp32 = ablation.build_config('all-additions', 0, 'wd', plain)
    assert fp32.optim_wrapper.model.get('type', 'OptimWrapper') == \
        'OptimWrapper'
    # float32 runs recorded before the flag keep matching
    assert ablation.settings(plain) == dict(
        iters=None, data_root=None, cfg_options=[])
    assert ablation.settings(bf16)['bf16'] is True


def _result(variant, seed, maps, sec):
    return dict(
        variant=variant,
        seed=seed,
        settings=dict(iters=None, data_root=None, cfg_options=[]),
        max_iters=2000,
        sec_per_iter=sec,
        metrics=dict(zip(ablation.METRICS, maps)))


def test_table_mean_and_sample_std(tmp_path):
    results = [
        _result('all-additions', 0, (0.3, 0.5, 0.2), 0.5),
        _result('all-additions', 1, (0.5, 0.7, 0.4), 0.7),
        _result('seqformer-mode', 0, (0.25, 0.5, 0.125), 0.4),
    ]
    for r in results:
        run = tmp_path / r['variant'] / f'seed{r["seed"]}'
        run.mkdir(parents=True)
        (run / 'result.json').write_text(json.dumps(r))
    (tmp_path / 'msts-encoder' / 'seed0').mkdir(parents=True)  # unfinished
    # all-additions' logged D values, as mmengine writes them: only the
    # iterations past half of max_iters (2000) count
    for seed, acc_real in ((0, 0.6), (1, 0.8)):
        log = tmp_path / 'all-additions' / f'seed{seed}' / '20261202_0000'
        (log / 'vis_data').mkdir(parents=True)
        rows = [
            dict(
                iter=1000, disc_acc_real=0.0, disc_acc_fake=0.0,
                loss_disc=9.0),
            dict(iter=1500, loss=3.0),  # an iteration that logged no D
            dict(
                iter=1020,
                disc_acc_real=acc_real,
                disc_acc_fake=0.9,
                loss_disc=1.0),
            dict(
                iter=2000,
                disc_acc_real=acc_real,
                disc_acc_fake=0.7,
                loss_disc=1.5),
        ]
        (log / 'vis_data' / 'scalars.json').write_text(''.join(
            json.dumps(r) + '\n' for r in rows))
    table = ablation.write_table(str(tmp_path))
    assert (tmp_path / 'ablation.md').read_text() == table
    rows = [line for line in table.splitlines() if line.startswith('| ')]
    # header, then variants in the tool's order; unfinished ones left out.
    # all-additions: mean 0.4, sample std sqrt(2 * 0.1^2 / 1) = 0.1414
    # D: real (0.6 + 0.8) / 2, fake 0.8 in both, loss 1.25 in both
    assert rows[1:] == [
        '| seqformer-mode | 2000 | 0 | 0.2500 ± - | 0.5000 ± - | '
        '0.1250 ± - | 0.400 | - |',
        '| all-additions | 2000 | 0,1 | 0.4000 ± 0.1414 | 0.6000 ± 0.1414 | '
        '0.3000 ± 0.1414 | 0.600 | 0.70 / 0.80, 1.250 |',
    ]


def test_finished_runs_are_skipped_and_other_settings_refused(
        tmp_path, monkeypatch, capsys):
    run = tmp_path / 'seqformer-mode' / 'seed0'
    run.mkdir(parents=True)
    (run / 'result.json').write_text(
        json.dumps(_result('seqformer-mode', 0, (0.1, 0.2, 0.3), 0.4)))
    calls = []
    monkeypatch.setattr(ablation.subprocess, 'run',
                        lambda *a, **k: calls.append(a))
    ablation.main(
        ['--work-dir',
         str(tmp_path), '--variants', 'seqformer-mode'])
    assert calls == [] and 'done, skipped' in capsys.readouterr().out
    with pytest.raises(SystemExit, match='another --work-dir'):
        ablation.main([
            '--work-dir',
            str(tmp_path), '--variants', 'seqformer-mode', '--iters', '4'
        ])


def test_bf16_reaches_the_run_subprocess(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(ablation.subprocess, 'run',
                        lambda command, **k: calls.append(command))
    ablation.main([
        '--work-dir',
        str(tmp_path), '--variants', 'seqformer-mode', '--bf16',
        '--cfg-options', 'model.track_head.num_queries=20'
    ])
    (command, ) = calls
    one = ablation.parse_args(command[2:])
    assert one.run_one == ['seqformer-mode', '0'] and one.bf16
    assert one.cfg_options == ['model.track_head.num_queries=20']
