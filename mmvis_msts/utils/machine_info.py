"""What machine a job runs on: for benchmark result files, and how many
torch threads a CPU training run should take."""
import math
import os
import platform
import subprocess
import time
from typing import Callable, Optional, Tuple


def cpu_model() -> str:
    """``Model name`` of lscpu (falls back to the platform string)."""
    try:
        out = subprocess.run(['lscpu'],
                             capture_output=True,
                             text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or platform.machine()
    for line in out.splitlines():
        if line.startswith('Model name:'):
            return line.split(':', 1)[1].strip()
    return platform.machine()


def usable_cores() -> int:
    """Cores this process may run on, counting each physical core once.

    The CPUs of the process's affinity mask (what ``nproc`` counts), less
    the hyperthread siblings (same package and core id in
    ``/sys/devices/system/cpu/cpu<N>/topology``): torch's own default
    thread count is the number of physical cores too.
    """
    allowed = (
        os.sched_getaffinity(0) if hasattr(os, 'sched_getaffinity') else set(
            range(os.cpu_count() or 1)))
    cores = set()
    try:
        for cpu in allowed:
            topology = f'/sys/devices/system/cpu/cpu{cpu}/topology'
            with open(f'{topology}/physical_package_id') as f:
                package = f.read().strip()
            with open(f'{topology}/core_id') as f:
                cores.add((package, f.read().strip()))
    except OSError:  # no sysfs topology: count the CPUs
        return len(allowed)
    return len(cores) or len(allowed)


def cpu_jiffies(stat_path: str = '/proc/stat') -> Tuple[int, int]:
    """(idle, total) CPU time of all CPUs since boot, in clock ticks.

    From the first line of ``/proc/stat`` (``cpu user nice system idle
    iowait irq softirq steal ...``); idle is ``idle + iowait``. Guest time
    is already counted in user time, so only the first eight fields add up
    to the total.
    """
    with open(stat_path) as f:
        fields = [int(v) for v in f.readline().split()[1:9]]
    return fields[3] + fields[4], sum(fields)


def tree_cpu_ticks(pid: Optional[int] = None) -> int:
    """CPU time of a process, its threads and its live child processes
    (DataLoader workers), in clock ticks (``/proc/<pid>/stat`` fields 14
    and 15, utime and stime; children from ``task/*/children``)."""
    pid = os.getpid() if pid is None else pid
    try:
        with open(f'/proc/{pid}/stat') as f:
            # the command name (field 2) may hold spaces: split after it
            fields = f.read().rsplit(')', 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])
        children = []
        for task in os.listdir(f'/proc/{pid}/task'):
            with open(f'/proc/{pid}/task/{task}/children') as f:
                children += [int(c) for c in f.read().split()]
    except (OSError, ValueError):  # the process has exited meanwhile
        return 0
    return ticks + sum(tree_cpu_ticks(c) for c in children)


class OtherCPULoad:
    """Cores that other processes than this one (and its children) used
    since the previous :meth:`sample`.

    Args:
        read_all (Callable): ``(idle, total)`` ticks of all CPUs. Defaults
            to :func:`cpu_jiffies`.
        read_own (Callable): Ticks of this process tree. Defaults to
            :func:`tree_cpu_ticks`.
    """

    def __init__(self,
                 read_all: Callable[[], Tuple[int, int]] = cpu_jiffies,
                 read_own: Callable[[], int] = tree_cpu_ticks) -> None:
        self.read_all, self.read_own = read_all, read_own
        self.last = (*read_all(), read_own())

    def sample(self, cores: int) -> float:
        """Other processes' share of all CPUs since the last sample, times
        ``cores`` (0 when no time has passed)."""
        now = (*self.read_all(), self.read_own())
        idle, total, own = (a - b for a, b in zip(now, self.last))
        self.last = now
        if total <= 0:
            return 0.0
        return max(0.0, cores * (total - idle - own) / total)


def idle_cores(cores: int,
               interval_s: float = 1.0,
               load: Optional[OtherCPULoad] = None,
               sleep: Callable[[float], None] = time.sleep) -> float:
    """How many of ``cores`` cores other processes leave idle now.

    ``cores`` less what :class:`OtherCPULoad` counts over ``interval_s``
    seconds, while the caller sleeps.

    Args:
        load (OtherCPULoad, optional): Started now when not given.
    """
    load = OtherCPULoad() if load is None else load
    sleep(interval_s)
    return cores - load.sample(cores)


def training_threads(cores: Optional[int] = None,
                     idle: Optional[float] = None) -> int:
    """Torch threads for a CPU training run: the cores left idle, >= 1.

    An OpenMP thread that has to wait for a core another process holds
    stalls every parallel operator, which made an iteration of the main job
    20x slower at a load of 9 with 2 threads (docs/main_job.md, "Speed").
    So a core counts only when at least three quarters of it are idle
    (``floor(idle + 0.25)``). The loader's worker needs little CPU (about
    6 % of a core in the main job) and is not counted.

    Args:
        cores (int, optional): Usable cores. Defaults to
            :func:`usable_cores`.
        idle (float, optional): Idle cores. Defaults to :func:`idle_cores`
            over one second.

    Returns:
        int: Between 1 and ``cores``.
    """
    cores = usable_cores() if cores is None else cores
    idle = idle_cores(cores) if idle is None else idle
    return max(1, min(cores, math.floor(idle + 0.25)))


if __name__ == '__main__':
    # tools/run_main_job.sh: "<threads> <idle cores> <usable cores>"
    n_cores = usable_cores()
    n_idle = idle_cores(n_cores)
    print(training_threads(n_cores, n_idle), f'{n_idle:.2f}', n_cores)
