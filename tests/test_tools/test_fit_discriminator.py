"""tools/analysis_tools/fit_discriminator.py on the small synthetic set."""
import json
import subprocess
import sys

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from tool_fixtures import MSTS_CONFIG, REPO_ROOT, run_tool, tool_env

TOOL = REPO_ROOT / 'tools/analysis_tools/fit_discriminator.py'


def random_checkpoint(path):
    """A randomly initialised main-job model saved as a checkpoint."""
    from mmdet.registry import MODELS

    import mmvis_msts  # noqa: F401
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(MSTS_CONFIG).model)
    model.init_weights()
    torch.save(dict(state_dict=model.state_dict()), path)


def test_fits_a_fresh_discriminator_and_reports(synthetic_workdir):
    ckpt = synthetic_workdir / 'random.pth'
    random_checkpoint(ckpt)
    run_tool([
        sys.executable,
        str(TOOL),
        str(MSTS_CONFIG),
        str(ckpt), '--batches', '3', '--held-out', '1', '--steps', '2',
        '--mask-stride-channels', '8', '--out-dir', 'work_dirs/fit'
    ], synthetic_workdir)
    with open(synthetic_workdir / 'work_dirs/fit/fit_discriminator.json') as f:
        result = json.load(f)
    assert result['mask_stride_channels'] == 8
    assert (result['train_batches'], result['held_out_batches']) == (2, 1)
    assert result['gan_type'] == 'hinge'  # the main job's loss_adv
    held_out = result['held_out']
    for key in ('acc_real', 'acc_fake', 'map_diff'):
        assert 0 <= held_out[key] <= 1, (key, held_out)
    assert -1 <= held_out['step_corr'] <= 1
    # hinge: each of the two terms is >= 0
    assert held_out['loss'] >= 0


def test_config_without_discriminator_is_refused(synthetic_workdir):
    proc = subprocess.run([
        sys.executable,
        str(TOOL),
        str(REPO_ROOT / 'configs/ablation/seqformer-mode.py'), 'none.pth'
    ],
                          cwd=synthetic_workdir,
                          env=tool_env(),
                          capture_output=True,
                          text=True,
                          timeout=120)
    assert proc.returncode != 0
    assert 'seqformer-mode.py has no model.discriminator' in proc.stderr
