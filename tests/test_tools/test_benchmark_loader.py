"""tools/analysis_tools/benchmark_loader.py on the small synthetic set."""
import json
import sys
from pathlib import Path

import pytest
import torch
from tool_fixtures import MSTS_CONFIG

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / 'tools' / 'analysis_tools'))

import benchmark_loader as bl  # noqa: E402


def test_settings_cross_strategies_with_worker_counts():
    args = bl.parse_args([
        'cfg.py', '--strategies', 'file_system', 'file_descriptor',
        '--workers', '2', '0', '0'
    ])
    assert bl.settings_of(args) == [('file_system', 2), ('file_descriptor', 2),
                                    (bl.IN_PROCESS, 0)]
    args = bl.parse_args(['cfg.py', '--workers', '-1'])
    with pytest.raises(ValueError, match='--workers takes counts >= 0'):
        bl.settings_of(args)


def test_runs_every_setting_on_the_same_batches(synthetic_workdir, tmp_path,
                                                monkeypatch):
    monkeypatch.chdir(synthetic_workdir)  # the config's relative data root
    before = torch.multiprocessing.get_sharing_strategy()
    bl.main([
        str(MSTS_CONFIG), '--rounds', '2', '--batches', '1', '--warmup', '1',
        '--step-time', '0.01', '--out-dir',
        str(tmp_path), '--cfg-options', 'train_dataloader.batch_size=1'
    ])
    # the loaders' strategies do not leak into the process
    assert torch.multiprocessing.get_sharing_strategy() == before
    results = json.loads((tmp_path / 'benchmark_loader.json').read_text())
    rows = results['rows']
    assert [(r['strategy'], r['workers'])
            for r in rows] == [('file_descriptor', 1), ('file_system', 1),
                               (bl.IN_PROCESS, 0)]
    assert all(len(r['waits_ms']) == 2 for r in rows)
    assert rows[0]['first_over_this'] == 1.0
    # seeded alike, every loader yields the same clip first: one
    # (T, C, H, W) input and per frame at least its boxes, labels and ids
    counts = {r['storages_per_batch'] for r in rows}
    assert len(counts) == 1 and counts.pop() >= 1 + 3 * 3
    table = (tmp_path / 'benchmark_loader.md').read_text()
    assert table.count('\n| ') == 1 + len(rows)  # header and one per row
