"""LoggerHook whose test-metrics file is written by one process only."""
from typing import Dict, Optional

from mmdet.registry import HOOKS
from mmengine.dist import is_main_process
from mmengine.hooks import LoggerHook


@HOOKS.register_module()
class VISLoggerHook(LoggerHook):
    """mmengine's ``LoggerHook`` with a rank-0-only test-metrics dump.

    mmengine 0.10.7 dumps ``<log_dir>/<timestamp>.json`` after the test
    epoch on every rank; the ranks share the log dir, so with several
    processes their writes can interleave into an invalid file (seen as a
    trailing ``}}``). Only the main process writes it here; the others
    have nothing to log either (their logger prints errors only).
    """

    def after_test_epoch(self,
                         runner,
                         metrics: Optional[Dict[str, float]] = None) -> None:
        if is_main_process():
            super().after_test_epoch(runner, metrics)
