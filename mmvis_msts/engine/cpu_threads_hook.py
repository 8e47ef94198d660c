"""Torch threads of a CPU training run that follow the machine's load."""
from typing import Optional

import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook

from ..utils.machine_info import OtherCPULoad, training_threads, usable_cores


@HOOKS.register_module()
class CPUThreadsHook(Hook):
    """Fewer torch threads while other processes take cores, as many as at
    the start when they leave.

    An OpenMP thread that waits for a core another process holds stalls
    every parallel operator: with one busy process beside it, a main-job
    step with 2 threads took 3.3x as long as with 1 (docs/benchmarks.md,
    "Two torch threads on an idle machine"). ``tools/run_main_job.sh``
    picks the threads once, from the cores idle when training starts; this
    hook checks again every ``interval`` iterations, from the CPU time
    other processes than the training process and its loader workers used
    meanwhile, and sets
    ``torch.set_num_threads`` to the cores left (``training_threads``), at
    most the count training started with.

    Args:
        interval (int): Training iterations between checks. Defaults to 50.
    """

    priority = 'LOW'

    def __init__(self, interval: int = 50) -> None:
        self.interval = interval
        self.load: Optional[OtherCPULoad] = None

    def before_train(self, runner) -> None:
        self.max_threads = torch.get_num_threads()
        self.cores = usable_cores()
        try:
            self.load = OtherCPULoad()
        except OSError as error:  # no /proc: keep the threads as they are
            runner.logger.warning(f'CPUThreadsHook is off: {error}')
            self.load = None

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        if self.load is None or self.max_threads < 2:
            return  # no /proc, or one thread from the start
        if not self.every_n_train_iters(runner, self.interval):
            return
        others = self.load.sample(self.cores)
        threads = min(self.max_threads,
                      training_threads(self.cores, self.cores - others))
        if threads != torch.get_num_threads():
            runner.logger.info(
                f'torch threads {torch.get_num_threads()} -> {threads}: '
                f'other processes used {others:.2f} of {self.cores} cores '
                f'over the last {self.interval} iterations')
            torch.set_num_threads(threads)
