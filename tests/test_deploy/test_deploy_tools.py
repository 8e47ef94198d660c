"""tools/deployment/export_onnx.py and benchmark_onnx.py end to end."""
import subprocess
import sys
from pathlib import Path

import pytest
from deploy_fixtures import CONFIG, H, W

pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')

REPO = Path(__file__).resolve().parents[2]


def run_tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args],
                          cwd=REPO,
                          capture_output=True,
                          text=True)


def test_export_check_and_benchmark(tmp_path):
    out = tmp_path / 'tiny.onnx'
    proc = run_tool('tools/deployment/export_onnx.py', CONFIG, '--frames', '2',
                    '--shape', str(H), str(W), '--out', str(out), '--check')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.is_file()
    assert 'exporting random weights' in proc.stdout
    assert f'clips of 2 frames of {H}x{W}' in proc.stdout
    assert 'same top-k (query, label) pairs: True' in proc.stdout

    # the same seed (0) gives the benchmark the export's random weights
    proc = run_tool('tools/deployment/benchmark_onnx.py', CONFIG, str(out),
                    '--threads', '1', '--runs', '1', '--warmup', '0')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'same top-k (query, label) pairs: True' in proc.stdout
    assert 'PyTorch / onnxruntime median time' in proc.stdout


def test_export_dynamic_frames(tmp_path):
    out = tmp_path / 'tiny_dynamic.onnx'
    proc = run_tool('tools/deployment/export_onnx.py', CONFIG, '--frames', '2',
                    '--dynamic-frames', '--shape', str(H), str(W), '--out',
                    str(out), '--check')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f'clips of any number of frames (traced with 2) of {H}x{W}' in \
        proc.stdout
    assert 'same top-k (query, label) pairs: True' in proc.stdout


def test_export_missing_checkpoint(tmp_path):
    proc = run_tool('tools/deployment/export_onnx.py', CONFIG,
                    str(tmp_path / 'none.pth'), '--frames', '2', '--shape',
                    str(H), str(W), '--out', str(tmp_path / 'x.onnx'))
    assert proc.returncode == 1
    assert f'checkpoint {tmp_path / "none.pth"} does not exist' in \
        proc.stderr
