"""tools/model_converters/convert_legacy_checkpoint.py on toy checkpoints."""
import enum
import importlib.util
import os
import sys
import types
from argparse import Namespace
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.logging import HistoryBuffer

from mmvis_msts.utils import (UnsafeCheckpointError,
                              load_checkpoint_weights_only)

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOL = REPO_ROOT / 'tools/model_converters/convert_legacy_checkpoint.py'
MODULE = __name__  # where the legacy classes below pickle from


def _load_tool():
    spec = importlib.util.spec_from_file_location('convert_legacy_checkpoint',
                                                  TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


conv = _load_tool()


class LegacyThing:
    """A class of old code: weights-only loading refuses it."""


class Level(enum.IntEnum):
    HIGH = 2


def weighted_mean(buffer, window_size=None):
    """A HistoryBuffer statistic registered by old code."""
    return buffer.mean(window_size)


class RunsCode:

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


@pytest.fixture
def legacy_ckpt(tmp_path):
    """A trusted legacy checkpoint and its state dict."""
    state_dict = OrderedDict(weight=torch.randn(2, 3), bias=torch.zeros(2))
    registry = HistoryBuffer._statistics_methods
    before = dict(registry)
    registry['weighted_mean'] = weighted_mean
    try:
        path = tmp_path / 'legacy.pth'
        torch.save(
            dict(
                state_dict=state_dict,
                meta=dict(
                    args=Namespace(lr=0.1),
                    thing=LegacyThing(),
                    cfg=ConfigDict(a=dict(b=1)),
                    names=np.array(['a', 'b']),
                    ids=frozenset({1}),
                    level=Level.HIGH,
                    eta=np.float64(1.5),
                    masked=np.ma.masked_array([1, 2], mask=[0, 1])),
                message_hub=dict(
                    log_scalars=dict(
                        loss=HistoryBuffer([1.0, 2.0], [1, 1]),
                        empty=HistoryBuffer()))), path)
    finally:
        registry.clear()
        registry.update(before)
    return path, state_dict


def test_round_trip(legacy_ckpt, tmp_path):
    path, state_dict = legacy_ckpt
    with pytest.raises(UnsafeCheckpointError, match='LegacyThing'):
        load_checkpoint_weights_only(str(path))
    out = tmp_path / 'converted.pth'
    notes = conv.convert_legacy_checkpoint(str(path), str(out))
    assert sorted(notes) == sorted([
        "HistoryBuffer statistic 'weighted_mean': dropped "
        f'{MODULE}.weighted_mean',
        'meta.args: argparse.Namespace -> dict',
        f'meta.thing: dropped {MODULE}.LegacyThing',
        'meta.cfg.a: mmengine.config.config.ConfigDict -> dict',
        'meta.cfg: mmengine.config.config.ConfigDict -> dict',
        'meta.names: numpy.ndarray[<U1] -> list',
        'meta.ids: frozenset -> set',
        f'meta.level: {MODULE}.Level -> int',
        'meta.masked: numpy.ma.MaskedArray[<i8] -> numpy.ndarray[<i8]',
    ])
    # not left in the class-wide registry either
    assert 'weighted_mean' not in HistoryBuffer._statistics_methods
    ckpt = torch.load(out)
    for key, value in state_dict.items():
        torch.testing.assert_close(ckpt['state_dict'][key], value)
    meta = ckpt['meta']
    masked = meta.pop('masked')
    assert type(masked) is np.ndarray
    np.testing.assert_array_equal(masked, [1, 2])
    assert meta == dict(
        args=dict(lr=0.1),
        cfg=dict(a=dict(b=1)),
        names=['a', 'b'],
        ids={1},
        level=2,
        eta=1.5)
    assert [type(meta[k]) for k in ('cfg', 'level', 'eta')] == \
        [dict, int, np.float64]
    scalars = ckpt['message_hub']['log_scalars']
    np.testing.assert_array_equal(scalars['loss'].data[0], [1.0, 2.0])
    assert scalars['loss'].mean() == 1.5
    assert scalars['empty'].data[0].shape == (0, )


def test_cli_prints_what_it_did(legacy_ckpt, tmp_path, monkeypatch, capsys):
    path, _ = legacy_ckpt
    out = tmp_path / 'converted.pth'
    monkeypatch.setattr(
        sys, 'argv',
        ['x', str(path), str(out), '--trust-pickle'])
    conv.main()
    lines = capsys.readouterr().out.strip().splitlines()
    assert f'meta.thing: dropped {MODULE}.LegacyThing' in lines
    assert lines[-1] == (f'wrote {out} (9 values converted or dropped); it '
                         'loads with weights_only=True')


def test_cli_refuses_without_trust_pickle(tmp_path, monkeypatch, capsys):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'malicious.pth'
    torch.save({'meta': RunsCode(marker)}, path)
    out = tmp_path / 'out.pth'
    monkeypatch.setattr(sys, 'argv', ['x', str(path), str(out)])
    with pytest.raises(SystemExit) as info:
        conv.main()
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f'not loading {path}' in err and '--trust-pickle' in err
    assert not marker.exists() and not out.exists()


def test_refuses_to_overwrite_its_input(legacy_ckpt):
    path, _ = legacy_ckpt
    with pytest.raises(ValueError, match='is the input'):
        conv.convert_legacy_checkpoint(str(path), str(path))


def test_names_the_file_whose_code_is_gone(tmp_path, monkeypatch):
    gone = types.ModuleType('legacy_module_gone')
    exec('class Thing:\n    pass\n', gone.__dict__)
    monkeypatch.setitem(sys.modules, 'legacy_module_gone', gone)
    path = tmp_path / 'gone.pth'
    torch.save({'x': gone.Thing()}, path)
    monkeypatch.delitem(sys.modules, 'legacy_module_gone')
    with pytest.raises(
            RuntimeError,
            match=f"{path}: cannot unpickle it even in full "
            r"\(No module named 'legacy_module_gone'\)"):
        conv.convert_legacy_checkpoint(str(path), str(tmp_path / 'out.pth'))
