"""tools/analysis_tools/compare_inference_modes.py without a model run: the
mode syntax, the overrides of each mode and the resumable table."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / 'tools' / 'analysis_tools'))

import compare_inference_modes as cim  # noqa: E402


def test_modes_parse_and_bad_ones_are_named():
    assert cim.parse_mode('whole') is None
    assert cim.parse_mode('12:6') == (12, 6)
    for bad in ('12', 'a:b', '4:5', '3:0'):
        with pytest.raises(ValueError, match=repr(bad)):
            cim.parse_mode(bad)


def test_each_mode_sets_the_head_test_cfg():
    key = 'model.track_head.test_cfg.'
    assert cim.mode_options('whole', None) == {key + 'clip_window': None}
    assert cim.mode_options('6:3', 'data/long') == {
        key + 'clip_window': 6,
        key + 'clip_stride': 3,
        key + 'clip_mode_min_frames': 1,
        'test_dataloader.dataset.data_root': 'data/long/',
    }


def test_finished_modes_are_read_not_rerun(tmp_path):
    # both results exist: the tool only writes the table (a run would fail:
    # the config and checkpoint do not exist)
    for mode, m_ap in (('whole', 0.25), ('6:3', 0.5)):
        result = dict(mode=mode, frames_per_s=2.0, metrics={'mAP': m_ap})
        (tmp_path / f'{cim.safe_name(mode)}.json').write_text(
            json.dumps(result))
    subprocess.run([
        sys.executable,
        str(REPO / 'tools/analysis_tools/compare_inference_modes.py'),
        'missing.py', 'missing.pth', '--modes', 'whole', '6:3', '--out-dir',
        str(tmp_path)
    ],
                   check=True,
                   capture_output=True)
    rows = (tmp_path / 'modes.md').read_text().splitlines()[2:]
    assert rows[0].startswith('| whole video | 0.250 |')
    assert rows[1].startswith('| window 6, stride 3 | 0.500 |')
