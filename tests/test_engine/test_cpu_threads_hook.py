"""CPUThreadsHook: torch threads down while others load the CPU, back up
when they leave, never above the start's count."""
from types import SimpleNamespace

import pytest
import torch

from mmvis_msts.engine import CPUThreadsHook


class ScriptedLoad:
    """Other processes' cores, one value per check."""

    def __init__(self, *others: float) -> None:
        self.others = list(others)

    def sample(self, cores: int) -> float:
        return self.others.pop(0)


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def make_runner(messages):
    return SimpleNamespace(
        iter=0, logger=SimpleNamespace(info=messages.append))


def test_threads_follow_the_other_processes(restore_threads):
    torch.set_num_threads(2)
    messages = []
    runner = make_runner(messages)
    hook = CPUThreadsHook(interval=5)
    hook.before_train(runner)
    hook.cores = 2  # a 2-core machine, whatever this one has
    # a process takes most of a core, stays, leaves; then a light one
    hook.load = ScriptedLoad(0.9, 0.8, 0.05, 0.2)
    seen = []
    for it in range(20):
        runner.iter = it
        hook.after_train_iter(runner, it)
        seen.append(torch.get_num_threads())
    # checks after iterations 5, 10, 15, 20 (mmengine counts from 0)
    assert seen[:4] == [2] * 4
    assert seen[4:14] == [1] * 10
    assert seen[14:] == [2] * 6  # 0.2 of a core: 1.8 idle, both threads
    assert len(messages) == 2 and '2 -> 1' in messages[0] \
        and '1 -> 2' in messages[1]


def test_never_more_threads_than_at_the_start(restore_threads):
    torch.set_num_threads(1)
    runner = make_runner([])
    hook = CPUThreadsHook(interval=1)
    hook.before_train(runner)
    hook.cores = 2
    hook.load = ScriptedLoad()  # a check would fail: there is none
    for it in range(3):
        runner.iter = it
        hook.after_train_iter(runner, it)
    assert torch.get_num_threads() == 1


def test_without_proc_the_hook_is_off_and_says_so(restore_threads,
                                                  monkeypatch):
    import mmvis_msts.engine.cpu_threads_hook as module

    def no_proc():
        raise FileNotFoundError('/proc/stat')

    monkeypatch.setattr(module, 'OtherCPULoad', no_proc)
    torch.set_num_threads(2)
    warnings = []
    runner = SimpleNamespace(
        iter=0, logger=SimpleNamespace(warning=warnings.append))
    hook = CPUThreadsHook(interval=1)
    hook.before_train(runner)
    hook.after_train_iter(runner, 0)
    assert torch.get_num_threads() == 2
    assert len(warnings) == 1 and '/proc/stat' in warnings[0]
