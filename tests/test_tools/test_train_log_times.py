"""train_log_times.py on hand-written mmengine logs (figures by hand)."""
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / 'tools' / 'analysis_tools'))

import train_log_times  # noqa: E402

PREFIX = ' - mmengine - INFO - Iter(train) '
REST = ('  model.lr: 1.0000e-03  eta: 0:00:10  time: {t}  data_time: {d}  '
        'loss: 1.0\n')


def write_run(work_dir: Path, lines, stamp: str = '20261204_120000') -> None:
    """An mmengine log of (stamp, iteration, time, data_time) lines."""
    log_dir = work_dir / stamp
    log_dir.mkdir(parents=True)
    text = '2026/12/04 12:00:00 - mmengine - INFO - Config:\n'
    for stamp, it, t, d in lines:
        text += f'2026/12/04 {stamp}{PREFIX}[{it:4d}/60]' + REST.format(
            t=t, d=d)
    (log_dir / f'{log_dir.name}.log').write_text(text)


def test_table_of_two_runs(tmp_path, capsys):
    write_run(tmp_path / 'slow', [('12:00:10', 20, 0.5, 0.10),
                                  ('12:00:20', 40, 0.5, 0.10),
                                  ('12:00:30', 60, 0.6, 0.20)])
    write_run(tmp_path / 'fast', [('12:00:05', 20, 0.2, 0.01),
                                  ('12:00:09', 40, 0.3, 0.02),
                                  ('12:00:13', 60, 0.25, 0.03)])
    text = train_log_times.main(
        [str(tmp_path / 'slow'),
         str(tmp_path / 'fast')])
    rows = text.splitlines()[2:]
    # slow: median 0.5, mean 0.533, data 0.133, 20 s from 20 to 60
    assert '| 0.500 | 0.533 | 0.133 | 20 (20-60) | 1.00x |' in rows[0]
    # fast: median 0.25, mean 0.25, data 0.02, 8 s: 20 / 8 = 2.5x
    assert '| 0.250 | 0.250 | 0.020 | 8 (20-60) | 2.50x |' in rows[1]
    assert capsys.readouterr().out.strip() == text


def test_wall_time_between_chosen_iterations(tmp_path):
    write_run(tmp_path / 'run', [('12:00:10', 20, 0.5, 0.1),
                                 ('12:00:20', 40, 0.5, 0.1),
                                 ('12:00:35', 60, 0.5, 0.1)])
    # a later test run in the same work dir logs no training iterations
    write_run(tmp_path / 'run', [], stamp='20261204_130000')
    iters = train_log_times.training_log(str(tmp_path / 'run'))
    assert train_log_times.summarise(iters, 40, None)['wall_s'] == 15
    with pytest.raises(KeyError, match='iteration 30 is not logged'):
        train_log_times.summarise(iters, 30, None)


def test_work_dir_without_training_log_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        train_log_times.training_log(str(tmp_path))
    write_run(tmp_path / 'test_only', [])
    with pytest.raises(FileNotFoundError, match='of 1 logs'):
        train_log_times.training_log(str(tmp_path / 'test_only'))
