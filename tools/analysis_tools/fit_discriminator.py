"""Can a fresh discriminator tell a checkpoint's foreground from the GT?

The model of a checkpoint is frozen; the script draws ``--batches``
training batches (the config's train pipeline), keeps what D sees of each
(``AdversarialInputs``: frames, encoder maps, GT and predicted foreground
maps), trains a fresh ``FgBgDiscriminator`` of the config (with
``--mask-stride-channels`` if given) on all but the last ``--held-out``
batches, one batch a step, with the config's GAN loss and AdamW, and
reports on the held-out batches:

- D's accuracy on real and fake patches and its summed loss (chance: ln 2
  twice for BCE, 2.0 for hinge);
- the generator step at the fake map (minus the gradient of the generator
  loss) against GT minus fake: their correlation, and its mean where only
  the GT covers a pixel minus its mean where only the fake does (both
  positive when the step moves the fake map toward the GT);
- the mean |GT - fake| of the maps at the mask stride.

With the model frozen, D's target does not move: a D that cannot learn
here cannot learn in training either (docs/design.md §3c). Writes
``<out-dir>/fit_discriminator.json``.

Example (docs/design.md §3c):
    python tools/analysis_tools/fit_discriminator.py \\
        configs/msts_vis/msts-vis_r18-tiny_1xb4-2k_synthetic.py \\
        work_dirs/main_job/iter_2000.pth --mask-stride-channels 16
"""
import argparse
import json
import os
import os.path as osp
import time
from typing import Dict, List

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint

from mmvis_msts.engine.atomic_files import write_text_atomic
from mmvis_msts.models.vis.adversarial import (AdversarialInputs,
                                               AdversarialLoss,
                                               discriminator_logits)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Fit a fresh discriminator on a frozen checkpoint')
    parser.add_argument('config', help='model config file (with a D)')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--batches', type=int, default=80, help='batches drawn in all')
    parser.add_argument(
        '--held-out', type=int, default=10, help='of them, for evaluation')
    parser.add_argument('--steps', type=int, default=1000, help='D steps')
    parser.add_argument('--lr', type=float, default=1e-3, help='D lr')
    parser.add_argument(
        '--mask-stride-channels',
        type=int,
        help="the D's mask-stride entry width (default: the config's)")
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--out-dir', default='work_dirs/fit_discriminator', help='json out')
    return parser.parse_args()


def collect_inputs(cfg: Config, checkpoint: str, num: int,
                   seed: int) -> List[AdversarialInputs]:
    """What D sees of ``num`` training batches of the frozen model (the
    loader starts again when a small data set runs out)."""
    from mmdet.registry import MODELS
    model = MODELS.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location='cpu')
    # train mode: the train-time matching and foreground maps; no update
    model.train()
    loader = Runner.build_dataloader(
        dict(cfg.train_dataloader, num_workers=0, persistent_workers=False),
        seed=seed)
    inputs: List[AdversarialInputs] = []
    with torch.no_grad():
        while len(inputs) < num:
            for batch in loader:
                data = model.data_preprocessor(batch, True)
                inputs.append(model._vis_loss(**data)[1])
                if len(inputs) == num:
                    break
    return inputs


def evaluate(disc: torch.nn.Module, loss: AdversarialLoss,
             batches: List[AdversarialInputs]) -> Dict[str, float]:
    """Held-out accuracy, loss and generator-step direction (means)."""
    rows = []
    disc.eval()
    for adv in batches:
        with torch.no_grad():
            real = disc(adv.frames, adv.feats, adv.real)
        # one fake pass for the logits and the generator step
        fake_map = adv.fake.clone().requires_grad_()
        fake = disc(adv.frames, adv.feats, fake_map)
        step = -torch.autograd.grad(loss.generator_loss(fake),
                                    fake_map)[0].flatten()
        fake = fake.detach()
        stats = loss.discriminator_stats(real, fake)
        target = (adv.real - adv.fake).flatten()
        rows.append(
            dict(
                acc_real=float(stats['disc_acc_real']),
                acc_fake=float(stats['disc_acc_fake']),
                loss=float(sum(loss.discriminator_loss(real, fake).values())),
                step_corr=float(
                    torch.corrcoef(torch.stack([step, target]))[0, 1]),
                step_gt_minus_fake=float(step[target > 0].mean() -
                                         step[target < 0].mean()),
                map_diff=float(target.abs().mean())))
    return {k: round(sum(r[k] for r in rows) / len(rows), 4) for k in rows[0]}


def main() -> None:
    args = parse_args()
    init_default_scope('mmdet')
    from mmdet.registry import MODELS

    import mmvis_msts  # noqa: F401  (registers the modules)
    cfg = Config.fromfile(args.config)
    if cfg.model.get('discriminator') is None:
        raise ValueError(f'{args.config} has no model.discriminator')
    if not 0 < args.held_out < args.batches:
        raise ValueError('--held-out must be between 0 and --batches')
    # the checkpoint's model as configured; the fresh D as asked
    disc_cfg = cfg.model.discriminator.copy()
    if args.mask_stride_channels is not None:
        disc_cfg.mask_stride_channels = args.mask_stride_channels
    start = time.perf_counter()
    batches = collect_inputs(cfg, args.checkpoint, args.batches, args.seed)
    train, held_out = batches[:-args.held_out], batches[-args.held_out:]
    torch.manual_seed(args.seed)
    disc = MODELS.build(disc_cfg)
    loss = AdversarialLoss(**{
        k: v
        for k, v in cfg.model.get('loss_adv', {}).items() if k != 'type'
    })
    optimizer = torch.optim.AdamW(
        disc.parameters(), lr=args.lr, weight_decay=1e-4)
    disc.train()
    for step in range(args.steps):
        total = sum(
            loss.discriminator_loss(
                *discriminator_logits(disc, train[step %
                                                  len(train)])).values())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    result = dict(
        config=args.config,
        checkpoint=args.checkpoint,
        mask_stride_channels=disc_cfg.get('mask_stride_channels', 0),
        gan_type=loss.gan_type,
        steps=args.steps,
        train_batches=len(train),
        held_out_batches=len(held_out),
        held_out=evaluate(disc, loss, held_out),
        seconds=round(time.perf_counter() - start, 1))
    os.makedirs(args.out_dir, exist_ok=True)
    write_text_atomic(
        osp.join(args.out_dir, 'fit_discriminator.json'),
        json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == '__main__':
    main()
