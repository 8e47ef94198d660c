"""Generate the synthetic video instance segmentation data set.

Writes ``<out>/{train,val}/JPEGImages/<video>/<frame:05d>.jpg`` and
``<out>/annotations/{train,val}.json`` (YouTube-VIS format, RLE masks, both
splits with ground truth). Every generator setting is a flag (see ``--help``
for meanings and defaults). Re-running with the same settings does nothing;
other settings on an existing output fail unless ``--force``.

Example::

    python tools/misc/generate_synthetic_vis.py --out data/synthetic_vis \\
        --num-train 1200 --num-val 100 --seed 0 --workers 2 --preview
"""
import argparse
import dataclasses
import os
import os.path as osp
import sys
import time
from typing import List, Optional

from mmvis_msts.datasets.synthetic import (PREVIEW_FILE, SyntheticVISSettings,
                                           generate_dataset, write_preview)


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per setting, typed by its default, documented by its
    docstring."""
    docs = SyntheticVISSettings.field_docs()
    group = parser.add_argument_group(
        'generator settings (SyntheticVISSettings)')
    for field in dataclasses.fields(SyntheticVISSettings):
        default = field.default
        # argparse %-formats help texts: a literal percent sign needs %%
        kwargs = dict(
            default=default, help=docs[field.name].replace('%', '%%'))
        if isinstance(default, tuple):
            item_type = type(default[0])
            kwargs.update(
                type=item_type,
                nargs=2 if item_type is not str else '+',
                metavar=('LOW', 'HIGH') if item_type is not str else 'NAME')
        else:
            kwargs.update(type=type(default))
        group.add_argument(f"--{field.name.replace('_', '-')}", **kwargs)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Generate the synthetic VIS data set (the embedded '
        'default data set of mmvis-msts).')
    parser.add_argument(
        '--out',
        default='data/synthetic_vis',
        help='output root (default: data/synthetic_vis)')
    parser.add_argument(
        '--workers',
        type=int,
        default=1,
        help='worker processes; the output does not depend on it '
        '(default: 1)')
    parser.add_argument(
        '--force',
        action='store_true',
        help='delete the generator output under --out and regenerate')
    parser.add_argument(
        '--preview',
        action='store_true',
        help='also write <out>/preview.png, a contact sheet of the first '
        'val videos with their masks')
    parser.add_argument(
        '--preview-videos',
        type=int,
        default=4,
        help='number of videos in the preview (default: 4)')
    parser.add_argument(
        '--no-progress', action='store_true', help='hide progress bars')
    _add_setting_flags(parser)
    return parser.parse_args(argv)


def _disk_size(path: str) -> int:
    return sum(
        osp.getsize(osp.join(root, name)) for root, _, names in os.walk(path)
        for name in names)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the generator; return the exit status (0 on success)."""
    args = parse_args(argv)
    names = [f.name for f in dataclasses.fields(SyntheticVISSettings)]
    try:
        settings = SyntheticVISSettings(**{n: getattr(args, n) for n in names})
        start = time.perf_counter()
        generated = generate_dataset(
            settings,
            args.out,
            workers=args.workers,
            force=args.force,
            progress=not args.no_progress)
        elapsed = time.perf_counter() - start
        if generated:
            print(f'Generated {settings.num_train} train + {settings.num_val}'
                  f' val videos in {args.out} in {elapsed:.1f} s '
                  f'({_disk_size(args.out) / 2**20:.1f} MiB on disk)')
        else:
            print(f'{args.out} already holds the data set with these '
                  'settings: nothing to do (--force regenerates it)')
        if args.preview:
            path = write_preview(
                args.out,
                osp.join(args.out, PREVIEW_FILE),
                num_videos=args.preview_videos)
            print(f'Preview: {path}' if path else 'Preview: no val videos')
    except (ValueError, FileExistsError, FileNotFoundError, OSError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
