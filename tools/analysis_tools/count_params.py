"""Count the inference parameters of VIS models, per component.

The fg/bg discriminator runs only in training, so it is left out of the
totals (and listed on its own line). Models are built without loading any
weights.

Example:
    python tools/analysis_tools/count_params.py \
        configs/seqformer/seqformer_r50_8xb1-12e_youtubevis2019.py \
        configs/msts_vis/msts-vis_r50_8xb1-12e_youtubevis2019.py
"""
import argparse
from collections import OrderedDict
from typing import Dict, List

from mmengine.config import Config
from torch import nn

# head children reported on their own; everything else of the head is
# summed under "track_head (rest)"
HEAD_PARTS = ('encoder', 'decoder', 'mask_head')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Count inference parameters per component')
    parser.add_argument('configs', nargs='+', help='config files')
    return parser.parse_args()


def build_model(config: str) -> nn.Module:
    """Build the model of a config without any pretrained weights."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(config)
    cfg.model.pop('init_cfg', None)
    if 'init_cfg' in cfg.model.get('backbone', {}):
        cfg.model.backbone.init_cfg = None
    return MODELS.build(cfg.model)


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def component_counts(model: nn.Module) -> Dict[str, int]:
    """Parameters of each component; 'total' excludes the discriminator."""
    counts = OrderedDict()
    for name in ('backbone', 'neck'):
        counts[name] = count(getattr(model, name))
    head = model.track_head
    for name in HEAD_PARTS:
        counts[f'track_head.{name}'] = count(getattr(head, name))
    counts['track_head (rest)'] = count(head) - sum(
        count(getattr(head, name)) for name in HEAD_PARTS)
    counts['total'] = sum(counts.values())
    disc = getattr(model, 'discriminator', None)
    counts['discriminator (training only)'] = 0 if disc is None else \
        count(disc)
    return counts


def format_table(names: List[str], table: List[Dict[str, int]]) -> str:
    """Markdown table: one row per component, one column per config."""
    rows = list(table[0])
    header = '| component | ' + ' | '.join(names) + ' |'
    lines = [header, '|---' * (len(names) + 1) + '|']
    for row in rows:
        values = ' | '.join(f'{t[row] / 1e6:.2f} M' for t in table)
        lines.append(f'| {row} | {values} |')
    return '\n'.join(lines)


def main() -> None:
    args = parse_args()
    table = [component_counts(build_model(c)) for c in args.configs]
    names = [c.rsplit('/', 1)[-1].rsplit('.', 1)[0] for c in args.configs]
    print(format_table(names, table))


if __name__ == '__main__':
    main()
