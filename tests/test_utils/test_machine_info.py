"""The torch thread count of CPU training, from hand-counted CPU times."""
import os
import subprocess
import sys

import pytest

from mmvis_msts.utils.machine_info import (OtherCPULoad, cpu_jiffies,
                                           idle_cores, training_threads,
                                           tree_cpu_ticks, usable_cores)


def test_cpu_jiffies_counts_idle_and_iowait_of_the_first_eight_fields(
        tmp_path):
    stat = tmp_path / 'stat'
    # user nice system idle iowait irq softirq steal guest guest_nice
    stat.write_text('cpu  10 1 5 100 4 0 2 3 7 0\ncpu0 5 0 2 50 2 0 1 1 3 0\n')
    # idle 100 + 4; total 10+1+5+100+4+0+2+3 (guest is inside user)
    assert cpu_jiffies(str(stat)) == (104, 125)


def test_idle_cores_is_the_idle_share_over_the_interval_times_cores():
    snapshots = iter([(1000, 4000), (1150, 4300)])
    slept = []
    load = OtherCPULoad(read_all=lambda: next(snapshots), read_own=lambda: 0)
    idle = idle_cores(2, 0.5, load=load, sleep=slept.append)
    # 150 idle ticks of 300 on 2 cores: one core idle
    assert idle == 1.0
    assert slept == [0.5]


def test_training_threads_takes_the_cores_at_least_three_quarters_idle():
    assert training_threads(cores=2, idle=1.97) == 2
    assert training_threads(cores=2, idle=1.75) == 2
    assert training_threads(cores=2, idle=1.7) == 1  # a quarter-busy core
    assert training_threads(cores=2, idle=0.1) == 1  # never below 1
    assert training_threads(cores=8, idle=6.8) == 7
    assert training_threads(cores=2, idle=2.4) == 2  # never above cores


def test_usable_cores_are_within_the_affinity_mask():
    assert 1 <= usable_cores() <= len(os.sched_getaffinity(0))


def test_other_cpu_load_leaves_out_this_process_tree():
    snapshots = iter([(100, 400), (160, 800)])
    own = iter([50, 250])
    load = OtherCPULoad(
        read_all=lambda: next(snapshots), read_own=lambda: next(own))
    # 400 ticks: 60 idle, 200 this tree's, so 140 other processes': 0.35
    # of all CPUs, 0.7 of 2 cores
    assert load.sample(2) == pytest.approx(0.7)


def test_tree_cpu_ticks_counts_a_child_process():
    # the child burns 0.5 s of CPU by its own clock, then waits
    child = subprocess.Popen([
        sys.executable, '-c', 'import sys, time\n'
        'while time.process_time() < 0.5: pass\n'
        'print("ready", flush=True); sys.stdin.read()'
    ],
                             stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout.readline().strip() == 'ready'
        tick = os.sysconf('SC_CLK_TCK')
        child_ticks = tree_cpu_ticks(child.pid)
        assert child_ticks >= 0.45 * tick
        times = os.times()
        own_ticks = int((times.user + times.system) * tick)
        assert tree_cpu_ticks() >= own_ticks + child_ticks - 2
    finally:
        child.kill()
        child.wait()
