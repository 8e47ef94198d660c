"""Weights-only checkpoint loading after ``import mmvis_msts``.

Each case here is a row of docs/reliability.md, "Untrusted files". The
checkpoints are toy ones (a 2-parameter model, or a dict of numpy values),
so the module runs in seconds.
"""
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmdet.apis import init_track_model
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader, load_checkpoint
from numpy._core.multiarray import _reconstruct
from toy_runner import TOY_MODEL, ToyDataset, ToyModel, runner_kwargs

import mmvis_msts  # noqa: F401  (the registration under test)
from mmvis_msts.engine import VISRunner
from mmvis_msts.utils import (UnsafeCheckpointError,
                              load_checkpoint_weights_only)
from mmvis_msts.utils.safe_load import (MMENGINE_CHECKPOINT_GLOBALS,
                                        load_from_local)

REPO_ROOT = Path(__file__).resolve().parents[2]
NUMPY1_CHECKPOINT = REPO_ROOT / 'tests/data/checkpoints/numpy1_runner.pth'
CONVERTER = 'tools/model_converters/convert_legacy_checkpoint.py'
# numpy's numeric types, by name (numpy.org/doc/stable/user/basics.types)
FIXED_WIDTH_DTYPES = ('bool', 'int8', 'int16', 'int32', 'int64', 'uint8',
                      'uint16', 'uint32', 'uint64', 'float16', 'float32',
                      'float64', 'complex64', 'complex128')
NUMERIC_DTYPES = FIXED_WIDTH_DTYPES + ('longdouble', 'clongdouble')


def numpy_values(name: str) -> dict:
    """An array [0, 1, 2], empty arrays, a 0-d array and a scalar."""
    return dict(
        arange=np.arange(3).astype(name),
        empty=np.zeros(0, name),
        empty_2d=np.zeros((0, 3), name),
        zero_d=np.array(1, name),
        scalar=np.dtype(name).type(1),
        dtype=np.dtype(name))


class NumpyValuesHook(Hook):
    """Adds to the checkpoint what a hook may: numpy values, a buffer."""

    def before_save_checkpoint(self, runner, checkpoint):
        checkpoint['meta']['numpy_values'] = {
            name: numpy_values(name)
            for name in NUMERIC_DTYPES
        }
        checkpoint['message_hub']['log_scalars']['test/empty'] = \
            HistoryBuffer()


@pytest.fixture(scope='module')
def runner_ckpt(tmp_path_factory):
    """A VISRunner checkpoint (2 iterations, a validation) and its model."""
    work_dir = tmp_path_factory.mktemp('runner')
    runner = VISRunner(**runner_kwargs(
        work_dir,
        max_iters=2,
        custom_hooks=[NumpyValuesHook()],
        experiment_name='safe_load_runner'))
    runner.train()
    return work_dir / 'iter_2.pth', runner.model.state_dict()


def globals_needed(path: Path) -> set:
    """The globals torch would refuse without any allow-list."""
    allowed = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    try:
        return set(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    finally:
        torch.serialization.add_safe_globals(allowed)


def allow_list_names() -> set:
    return {
        g[1] if isinstance(g, tuple) else f'{g.__module__}.{g.__qualname__}'
        for g in MMENGINE_CHECKPOINT_GLOBALS
    }


def assert_numpy_values_equal(loaded: dict, name: str) -> None:
    for key, expected in numpy_values(name).items():
        value = loaded[key]
        assert type(value) is type(expected), key
        if key == 'dtype':
            assert value == expected
        else:
            assert value.dtype == expected.dtype, key
            np.testing.assert_array_equal(value, expected)


# --- What a checkpoint can hold loads through every entry point -------------


def load_by_torch(path):
    return torch.load(path)


def load_by_mmengine(path):
    return load_checkpoint(ToyModel(), str(path), map_location='cpu')


def load_by_checkpoint_loader(path):
    return CheckpointLoader.load_checkpoint(str(path), map_location='cpu')


def load_by_project(path):
    return load_checkpoint_weights_only(str(path))


CHECKPOINT_LOADERS = [
    load_by_torch, load_by_mmengine, load_by_checkpoint_loader, load_by_project
]


@pytest.mark.parametrize('load', CHECKPOINT_LOADERS)
def test_runner_checkpoint_loads(runner_ckpt, load):
    ckpt, trained_state = runner_ckpt
    loaded = load(ckpt)
    assert loaded['meta']['iter'] == 2
    for key, value in trained_state.items():
        torch.testing.assert_close(loaded['state_dict'][key], value)
    hub = loaded['message_hub']
    loss = hub['log_scalars']['train/loss']
    assert type(loss) is HistoryBuffer and len(loss.data[0]) == 2
    assert loss.mean() == pytest.approx(np.mean(loss.data[0]))
    assert hub['log_scalars']['test/empty'].data[0].shape == (0, )
    assert type(hub['runtime_info']['eta']) is np.float64
    for name in NUMERIC_DTYPES:
        assert_numpy_values_equal(loaded['meta']['numpy_values'][name], name)


def test_mmdet_init_track_model_loads_runner_checkpoint(runner_ckpt):
    ckpt, trained_state = runner_ckpt
    model = init_track_model(
        Config(dict(model=dict(type=TOY_MODEL))), str(ckpt), device='cpu')
    for key, value in trained_state.items():
        torch.testing.assert_close(model.state_dict()[key], value)
    assert model.dataset_meta == ToyDataset.metainfo


def test_allow_list_covers_the_runner_checkpoint(runner_ckpt):
    ckpt, _ = runner_ckpt
    needed = globals_needed(ckpt)
    # HistoryBuffer and its statistics, b'' of empty arrays, numpy values
    assert needed == {
        'mmengine.logging.history_buffer.HistoryBuffer', 'builtins.getattr',
        'builtins.bytes', 'numpy.dtype', 'numpy.ndarray',
        'numpy._core.multiarray._reconstruct', 'numpy._core.multiarray.scalar'
    }
    assert needed <= allow_list_names()


def test_mmengine_local_scheme_is_the_weights_only_loader():
    assert CheckpointLoader._get_checkpoint_loader('x.pth') is \
        load_from_local


@pytest.mark.parametrize('name', NUMERIC_DTYPES)
def test_numpy_values_of_every_numeric_dtype_load(tmp_path, name):
    path = tmp_path / f'{name}.pth'
    torch.save(numpy_values(name), path)
    assert_numpy_values_equal(torch.load(path), name)


def test_empty_history_buffer_loads_and_keeps_working(tmp_path):
    path = tmp_path / 'empty.pth'
    torch.save({'empty': HistoryBuffer()}, path)
    # protocol 2 pickles the b'' of the empty histories as bytes()
    assert 'builtins.bytes' in globals_needed(path)
    buffer = torch.load(path)['empty']
    assert [a.shape for a in buffer.data] == [(0, ), (0, )]
    buffer.update(3.0)
    assert buffer.mean() == 3.0 and buffer.current() == 3.0


def test_numpy1_checkpoint_loads():
    # saved by numpy 1.26 (tests/data/checkpoints/make_numpy1_checkpoint.py)
    needed = globals_needed(NUMPY1_CHECKPOINT)
    assert {
        'numpy.core.multiarray._reconstruct', 'numpy.core.multiarray.scalar'
    } <= needed
    assert not any(g.startswith('numpy._core') for g in needed)
    assert needed <= allow_list_names()
    ckpt = torch.load(NUMPY1_CHECKPOINT)
    assert ckpt['meta']['numpy_version'].startswith('1.')
    for name in FIXED_WIDTH_DTYPES:
        values = ckpt['meta']['numpy_values'][name]
        expected = numpy_values(name)
        for key in ('arange', 'empty', 'zero_d', 'scalar'):
            assert type(values[key]) is type(expected[key])
            assert values[key].dtype == expected[key].dtype
            np.testing.assert_array_equal(values[key], expected[key])
    scalars = ckpt['message_hub']['log_scalars']
    assert len(scalars['train/loss'].data[0]) == 2
    assert scalars['test/empty'].data[0].shape == (0, )
    assert type(ckpt['message_hub']['runtime_info']['eta']) is np.float64


# --- What the allow-list's stand-ins refuse ---------------------------------


class Reduce:
    """Pickles as ``func(*args)``."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize(
    'value,reason',
    [
        (Reduce(getattr, HistoryBuffer, '__init__'), 'getattr'),
        (Reduce(getattr, np.ndarray, 'tofile'), 'getattr'),
        # getattr(getattr, '__self__') would be the builtins module
        (Reduce(getattr, getattr, '__self__'), 'getattr'),
        (Reduce(bytes, 3), r'bytes\(3,\)'),
        (Reduce(np.dtype, 'O8', False, True), "dtype\\('O8'\\)"),
        (Reduce(np.dtype, 'U3', False, True), "dtype\\('U3'\\)"),
        (Reduce(np.dtype, 'V8', False, True), "dtype\\('V8'\\)"),
        (Reduce(np.dtype, 'M8[s]', False, True), r"dtype\('M8\[s\]'\)"),
        (Reduce(np.dtype, 'f8,i4', False, True), "dtype\\('f8,i4'\\)"),
        (Reduce(np.dtype, '>f8', False, True), "dtype\\('>f8'\\)"),
        (Reduce(np.dtype, [('a', 'O')], False, True), r"dtype\(\[\('a'"),
        (Reduce(np.dtype, 'f8,,', False, True), "dtype\\('f8,,'\\)"),
    ],
    ids=[
        'getattr-init', 'getattr-tofile', 'getattr-self', 'bytes-3',
        'dtype-object', 'dtype-str', 'dtype-void', 'dtype-datetime',
        'dtype-structured', 'dtype-big-endian', 'dtype-list',
        'dtype-unparsable'
    ])
def test_stand_ins_refuse(tmp_path, value, reason):
    path = tmp_path / 'refused.pth'
    torch.save({'meta': {'x': value}}, path)
    with pytest.raises(pickle.UnpicklingError, match=reason):
        torch.load(path)
    with pytest.raises(UnsafeCheckpointError, match=reason) as info:
        load_checkpoint_weights_only(str(path))
    message = str(info.value)
    assert message.startswith(f'{path}: not loaded')
    assert CONVERTER in message and '--trust-pickle' in message
    assert 'weights_only` set to `False' not in message


class ForgedDtype:
    """float64 whose pickled state adds a field 4 KiB past its 8 bytes.

    numpy applies such a state as given: reading the field of an array of
    it reads memory outside the array.
    """

    def __reduce__(self):
        state = (3, '<', None, ('a', ), {'a': (np.dtype('f8'), 4096)}, 8, 1, 0)
        return np.dtype, ('f8', False, True), state


class ForgedArray:

    def __reduce__(self):
        return (_reconstruct, (np.ndarray, (0, ), b'b'),
                (1, (1, ), ForgedDtype(), False, b'\x41' * 8))


def test_forged_dtype_state_is_ignored(tmp_path):
    path = tmp_path / 'forged.pth'
    torch.save({'x': ForgedArray()}, path)
    # a full unpickle shows what the file asks for
    forged = torch.load(path, weights_only=False)['x']
    assert forged.dtype.fields == {'a': (np.dtype('f8'), 4096)}
    array = torch.load(path)['x']
    assert array.dtype is np.dtype('f8') and array.dtype.fields is None
    assert array.tobytes() == b'\x41' * 8


def test_non_native_byte_order_loads_as_native_bytes(tmp_path):
    # documented limitation: the byte order is in the ignored dtype state
    path = tmp_path / 'big_endian.pth'
    values = np.arange(3).astype('>i4')
    torch.save({'x': values}, path)
    loaded = torch.load(path)['x']
    assert loaded.dtype == np.dtype('<i4')
    assert loaded.tobytes() == values.tobytes()


# --- A pickle that runs code is refused at every entry point ----------------

# (value kind, its global as torch's static scan names it, as torch.load
# names it when refusing: blocked module, or builtins without the prefix)
CODE_RUNNING = [('os.system', 'posix.system', 'posix.system'),
                ('exec', 'builtins.exec', 'exec')]


@pytest.fixture(params=CODE_RUNNING, ids=[c[0] for c in CODE_RUNNING])
def code_running_ckpt(request, tmp_path):
    """A checkpoint dict whose ``meta`` value creates a marker file."""
    kind, scan_name, torch_name = request.param
    marker = tmp_path / 'pwned'
    value = {
        'os.system': Reduce(os.system, f'touch {marker}'),
        'exec': Reduce(exec, f'open({str(marker)!r}, "w").close()'),
    }[kind]
    path = tmp_path / 'malicious.pth'
    torch.save(
        dict(state_dict=ToyModel().state_dict(), meta=dict(x=value)), path)
    return path, marker, scan_name, torch_name


def test_code_running_pickle_really_runs_code(code_running_ckpt):
    path, marker, _, _ = code_running_ckpt
    torch.load(path, weights_only=False)
    assert marker.exists()


def runner_load(path):
    runner = VISRunner(
        model=ToyModel(),
        work_dir=str(path.parent / 'work_dir'),
        experiment_name=f'safe_load_{path.parent.name}')
    return runner.load_checkpoint(str(path))


def init_track_model_load(path):
    return init_track_model(
        Config(dict(model=dict(type=TOY_MODEL))), str(path), device='cpu')


@pytest.mark.parametrize('load', [
    load_by_mmengine, load_by_checkpoint_loader, load_by_project, runner_load,
    init_track_model_load
])
def test_code_running_pickle_is_refused(code_running_ckpt, load):
    path, marker, scan_name, _ = code_running_ckpt
    with pytest.raises(UnsafeCheckpointError) as info:
        load(path)
    assert not marker.exists()
    message = str(info.value)
    assert message.startswith(f'{path}: not loaded')
    assert f'outside the weights-only allow-list (mmvis_msts.utils.' \
           f'safe_load): {scan_name}.' in message
    assert f'python {CONVERTER} {path} OUT.pth --trust-pickle' in message


def test_legacy_format_refusal_names_the_global(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'legacy_format.pth'
    torch.save({'x': Reduce(os.system, f'touch {marker}')},
               path,
               _use_new_zipfile_serialization=False)
    with pytest.raises(
            UnsafeCheckpointError,
            match=f'{path}: not loaded, .*GLOBAL posix.system'):
        load_checkpoint_weights_only(str(path))
    assert not marker.exists()


def test_code_running_pickle_is_refused_by_torch_load(code_running_ckpt):
    path, marker, _, torch_name = code_running_ckpt
    with pytest.raises(pickle.UnpicklingError, match=f'GLOBAL {torch_name}'):
        torch.load(path)
    assert not marker.exists()


def test_refused_even_if_torch_weights_only_is_switched_off(
        code_running_ckpt, monkeypatch):
    # the variable only flips torch.load calls that leave weights_only unset
    path, marker, _, _ = code_running_ckpt
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    with pytest.raises(UnsafeCheckpointError):
        load_by_mmengine(path)
    assert not marker.exists()


# --- The registration is made by importing the package ----------------------


def test_import_through_custom_imports_registers(runner_ckpt, tmp_path):
    ckpt, _ = runner_ckpt
    config = tmp_path / 'config.py'
    config.write_text("custom_imports = dict(imports=['mmvis_msts'])\n")
    script = ('import pickle, sys, torch\n'
              'from mmengine.config import Config\n'
              'try:\n'
              '    torch.load(sys.argv[1])\n'
              '    sys.exit("loaded before the import")\n'
              'except pickle.UnpicklingError:\n'
              '    pass\n'
              'Config.fromfile(sys.argv[2])\n'
              "print(torch.load(sys.argv[1])['meta']['iter'])\n")
    result = subprocess.run(
        [sys.executable, '-c', script,
         str(ckpt), str(config)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == '2'
