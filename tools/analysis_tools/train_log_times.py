"""Compare the iteration times of finished training runs, from their logs.

Reads the mmengine text log of each run (the newest
``<timestamp>/<timestamp>.log`` under its work dir with training lines) and
prints, per run, the median and mean of the logged ``time`` (one training
iteration, data loading included) and ``data_time`` (the wait between two
steps), and the wall time between the log lines of two iterations
(``--start``, default 20: the first logged one, after the start-up;
``--end``, default the last logged), read off the lines' timestamps. The
last column is the first run's wall time over this run's: above 1, this run
trained faster.

Example (docs/benchmarks.md, "Prefetching the next batch"):
    python tools/analysis_tools/train_log_times.py \\
        work_dirs/base969_s0/all-additions/seed0 \\
        work_dirs/pf_s0/all-additions/seed0
"""
import argparse
import datetime
import glob
import os.path as osp
import re
import statistics
from typing import Dict, List, NamedTuple, Optional

# "2026/12/04 19:29:15 - mmengine - INFO - Iter(train) [  40/2000] ...
#  time: 0.3531  data_time: 0.0060 ..."
LINE = re.compile(r'^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) - mmengine - INFO - '
                  r'Iter\(train\) \[\s*(\d+)/(\d+)\].*?\stime: ([\d.]+)\s+'
                  r'data_time: ([\d.]+)')


class LoggedIter(NamedTuple):
    """One logged training iteration."""
    stamp: datetime.datetime
    iteration: int
    time: float
    data_time: float


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Iteration times of finished training runs, from their '
        'mmengine logs')
    parser.add_argument(
        'work_dirs',
        nargs='+',
        help='work dirs of the runs (the first is '
        'the reference of the ratio)')
    parser.add_argument(
        '--start',
        type=int,
        default=20,
        help='first iteration of the wall '
        'time (a logged one)')
    parser.add_argument(
        '--end',
        type=int,
        default=None,
        help='last iteration of the wall '
        'time (default: the last logged)')
    return parser.parse_args(argv)


def read_log(path: str) -> List[LoggedIter]:
    """The logged training iterations of one mmengine text log."""
    iters = []
    with open(path) as f:
        for line in f:
            match = LINE.match(line)
            if match:
                stamp, it, _, time, data_time = match.groups()
                iters.append(
                    LoggedIter(
                        datetime.datetime.strptime(stamp, '%Y/%m/%d %H:%M:%S'),
                        int(it), float(time), float(data_time)))
    return iters


def training_log(work_dir: str) -> List[LoggedIter]:
    """The iterations of the newest log under ``work_dir`` that has any.

    A test run in the same work dir (``tools/run_main_job.sh`` tests
    there) writes a newer log without training lines; it is skipped.

    Raises:
        FileNotFoundError: If no ``<timestamp>/<timestamp>.log`` under
            ``work_dir`` logs a training iteration.
    """
    logs = sorted(glob.glob(osp.join(work_dir, '*', '*.log')))
    for path in reversed(logs):
        iters = read_log(path)
        if iters:
            return iters
    raise FileNotFoundError(
        f'no mmengine log (<timestamp>/<timestamp>.log) under {work_dir} '
        'with "Iter(train) [...] time: ... data_time: ..." lines (of '
        f'{len(logs)} logs)')


def summarise(iters: List[LoggedIter], start: int,
              end: Optional[int]) -> Dict[str, float]:
    """Median and mean times and the wall time from ``start`` to ``end``.

    Raises:
        KeyError: If ``start`` or ``end`` is not a logged iteration.
    """
    by_iter = {i.iteration: i for i in iters}
    end = iters[-1].iteration if end is None else end
    for it in (start, end):
        if it not in by_iter:
            raise KeyError(f'iteration {it} is not logged (logged: '
                           f'{iters[0].iteration}, ..., {iters[-1].iteration}'
                           ')')
    times = [i.time for i in iters]
    wall = by_iter[end].stamp - by_iter[start].stamp
    return dict(
        median_time=statistics.median(times),
        mean_time=statistics.mean(times),
        mean_data_time=statistics.mean(i.data_time for i in iters),
        wall_s=wall.total_seconds(),
        start=start,
        end=end)


def table(rows: Dict[str, Dict[str, float]]) -> str:
    """The markdown table of :func:`summarise` results, in order."""
    lines = [
        '| run | median time (s) | mean time (s) | mean data_time (s) | '
        'wall time, iterations (s) | first run\'s wall / this |',
        '|---|---|---|---|---|---|'
    ]
    reference = next(iter(rows.values()))['wall_s']
    for name, r in rows.items():
        lines.append(
            f'| {name} | {r["median_time"]:.3f} | {r["mean_time"]:.3f} | '
            f'{r["mean_data_time"]:.3f} | {r["wall_s"]:.0f} '
            f'({r["start"]}-{r["end"]}) | {reference / r["wall_s"]:.2f}x |')
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> str:
    args = parse_args(argv)
    rows = {
        work_dir: summarise(training_log(work_dir), args.start, args.end)
        for work_dir in args.work_dirs
    }
    text = table(rows)
    print(text)
    return text


if __name__ == '__main__':
    main()
