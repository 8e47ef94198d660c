from mmdet.registry import HOOKS
from mmengine.hooks import LoggerHook

import mmvis_msts.engine.logger_hook as logger_hook


def test_only_the_main_process_dumps_test_metrics(monkeypatch):
    calls = []
    monkeypatch.setattr(
        LoggerHook,
        'after_test_epoch',
        lambda self, runner, metrics=None: calls.append((runner, metrics)))
    hook = HOOKS.build(dict(type='VISLoggerHook', interval=1))
    monkeypatch.setattr(logger_hook, 'is_main_process', lambda: False)
    hook.after_test_epoch('runner', {'mAP': 1.0})
    assert calls == []
    monkeypatch.setattr(logger_hook, 'is_main_process', lambda: True)
    hook.after_test_epoch('runner', {'mAP': 1.0})
    assert calls == [('runner', {'mAP': 1.0})]
