"""Check a VIS data set: every problem of its annotation files and frames.

Give a config (its train, val and test video datasets are checked, with
their classes, image folders and test modes) or an annotation json
(COCO-video or raw YouTube-VIS / OVIS format, detected; frames are read
under ``--img-root``). Every problem is listed in one pass, then counted
per kind. The exit status is 1 when a problem is fatal (the dataset would
refuse to build in its default strict mode), else 0.

Examples::

    python tools/misc/check_dataset.py \\
        configs/msts_vis/msts-vis_r18-tiny_1xb4-2k_synthetic.py
    python tools/misc/check_dataset.py data/ovis/annotations_train.json \\
        --img-root data/ovis/train --frames header
"""
import argparse
import sys
import time
from typing import Iterator, List, NamedTuple, Optional, Sequence

from mmdet.datasets import BaseVideoDataset
from mmdet.registry import DATASETS
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

from mmvis_msts.datasets.validation import (FRAME_CHECKS, Problem,
                                            VISDatasetError, check_annotations,
                                            check_frames, count_kinds,
                                            detect_format, frame_refs,
                                            load_json, summarize)

SPLITS = ('train', 'val', 'test')


class Target(NamedTuple):
    """One annotation file to check and how its dataset reads it."""

    label: str
    ann_file: str
    img_root: Optional[str]
    classes: Optional[Sequence[str]]
    test_mode: bool
    backend_args: Optional[dict] = None


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='List every problem of a VIS data set (annotation '
        'files and frames) with counts; exit 1 if any is fatal.')
    parser.add_argument(
        'target',
        metavar='CONFIG_OR_JSON',
        help='a config (.py) or an annotation json')
    parser.add_argument(
        '--img-root',
        help='json only: folder of the frames (file names are relative to '
        'it); without it the frames are not read')
    parser.add_argument(
        '--frames',
        choices=FRAME_CHECKS,
        default='decode',
        help='what is read of every frame: none; exists (a stat); header '
        '(size, channels); decode (every pixel, finds truncated files). '
        'Default: decode')
    parser.add_argument(
        '--split',
        nargs='+',
        choices=SPLITS,
        default=list(SPLITS),
        help='config only: the loaders to check (default: all)')
    parser.add_argument(
        '--classes',
        nargs='+',
        help='json only: class names the categories must match, in order')
    parser.add_argument(
        '--test-mode',
        action='store_true',
        help='json only: a test split, whose annotations may be missing')
    parser.add_argument(
        '--workers',
        type=int,
        default=4,
        help='threads decoding frames with --frames decode (default: 4)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='config only: override settings, as in tools/train.py')
    return parser.parse_args(argv)


def _leaf_datasets(cfg: dict) -> Iterator[dict]:
    """The dataset configs inside wrappers (``dataset`` / ``datasets``)."""
    if 'datasets' in cfg:
        for child in cfg['datasets']:
            yield from _leaf_datasets(child)
    elif 'dataset' in cfg:
        yield from _leaf_datasets(cfg['dataset'])
    else:
        yield cfg


def config_targets(path: str,
                   splits: Sequence[str] = SPLITS,
                   cfg_options: Optional[dict] = None) -> List[Target]:
    """The video datasets of a config's loaders, built without loading.

    Args:
        path (str): The config file.
        splits (Sequence[str]): Loaders to look at. Defaults to all.
        cfg_options (dict, optional): Config overrides. Defaults to None.

    Returns:
        list[Target]: One per distinct (annotation file, image folder,
        test mode); datasets that are not video datasets (e.g. COCO
        images of joint training) are skipped with a note.
    """
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    targets: List[Target] = []
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if not loader:
            continue
        for dataset_cfg in _leaf_datasets(loader['dataset']):
            dataset = DATASETS.build(
                dict(dataset_cfg, lazy_init=True, pipeline=[]))
            name = type(dataset).__name__
            if not isinstance(dataset, BaseVideoDataset):
                print(f'{split}: {name} is not a video dataset: not checked')
                continue
            target = Target(f'{split} ({name})', dataset.ann_file,
                            dataset.data_prefix.get('img_path'),
                            dataset.metainfo.get('classes'), dataset.test_mode,
                            dataset.backend_args)
            if all(t[1:] != target[1:] for t in targets):
                targets.append(target)
    return targets


def check_target(target: Target,
                 frames: str = 'decode',
                 workers: int = 4) -> List[Problem]:
    """All problems of one annotation file and its frames; prints what was
    checked.

    Args:
        target (Target): The file and how it is read.
        frames (str): Frame check level (see ``FRAME_CHECKS``). Defaults
            to 'decode'.
        workers (int): Threads reading frames. Defaults to 4.

    Returns:
        list[Problem]: The problems.
    """
    print(f'== {target.label}: {target.ann_file}')
    try:
        ann = load_json(target.ann_file, target.backend_args)
    except VISDatasetError as error:
        return error.problems
    fmt = detect_format(ann)
    problems = check_annotations(ann, target.ann_file, target.classes,
                                 target.test_mode, fmt)
    if isinstance(ann, dict):
        counts = {
            key: len(ann[key]) if isinstance(ann.get(key), list) else 0
            for key in ('videos', 'images', 'annotations')
        }
        print(f'   {fmt} json: {counts["videos"]} videos, ' +
              (f'{counts["images"]} frames, ' if fmt == 'cocovid' else '') +
              f'{counts["annotations"]} annotations')
    if any(p.fatal and p.drop is None for p in problems):
        print('   frames not checked: the file itself is unusable')
    elif target.img_root is None or frames == 'none':
        print('   frames not checked' +
              ('' if frames == 'none' else ' (no --img-root)'))
    else:
        start = time.perf_counter()
        refs = frame_refs(ann, fmt)
        problems += check_frames(
            refs,
            target.img_root,
            target.ann_file,
            frames,
            backend_args=target.backend_args,
            workers=workers)
        print(f'   {len(refs)} frames under {target.img_root} checked '
              f'({frames}) in {time.perf_counter() - start:.1f} s')
    return problems


def print_report(problems: Sequence[Problem]) -> None:
    """Print every problem, then the counts per kind.

    Args:
        problems (Sequence[Problem]): The problems of one file.
    """
    for problem in problems:
        print(f'{problem.severity.upper():8}{problem.kind:26}{problem}')
    if problems:
        print(f'   {"kind":32}{"severity":>10}{"count":>8}')
        for (severity, kind), n in count_kinds(problems).items():
            print(f'   {kind:32}{severity:>10}{n:>8}')
    print(f'   -> {summarize(problems)}')


def main(argv: Optional[List[str]] = None) -> int:
    """Run the checks; return the exit status."""
    args = parse_args(argv)
    if args.target.endswith('.py'):
        targets = config_targets(args.target, args.split, args.cfg_options)
    else:
        targets = [
            Target('json', args.target, args.img_root, args.classes,
                   args.test_mode)
        ]
    all_problems: List[Problem] = []
    for target in targets:
        problems = check_target(target, args.frames, args.workers)
        print_report(problems)
        all_problems += problems
    if len(targets) > 1:
        print(f'== all {len(targets)} files: {summarize(all_problems)}')
    return 1 if any(p.fatal for p in all_problems) else 0


if __name__ == '__main__':
    sys.exit(main())
