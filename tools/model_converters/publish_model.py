"""Turn a training checkpoint into a release file.

    python tools/model_converters/publish_model.py IN_FILE OUT_FILE
        [--save-keys meta state_dict]

Keeps only ``--save-keys`` (optimizer, scheduler and message-hub states are
dropped), saves to ``OUT_FILE`` and renames it to
``<OUT_FILE without .pth>-<first 8 hex digits of its sha256>.pth``, the
OpenMMLab model-zoo naming. The input is read with weights-only unpickling
(``mmvis_msts.utils.load_checkpoint_weights_only``).
"""
import argparse
import hashlib
import os
import os.path as osp
from typing import Sequence

import torch
from mmengine.logging import print_log
from mmengine.utils import mkdir_or_exist

from mmvis_msts.utils import load_checkpoint_weights_only

DEFAULT_SAVE_KEYS = ('meta', 'state_dict')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Strip a checkpoint for release and add its sha256')
    parser.add_argument('in_file', help='input checkpoint')
    parser.add_argument('out_file', help='output checkpoint (.pth)')
    parser.add_argument(
        '--save-keys',
        nargs='+',
        default=list(DEFAULT_SAVE_KEYS),
        help='top-level keys of the checkpoint to keep')
    return parser.parse_args()


def sha256_of(path: str, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(chunk_size), b''):
            digest.update(chunk)
    return digest.hexdigest()


def publish(in_file: str,
            out_file: str,
            save_keys: Sequence[str] = DEFAULT_SAVE_KEYS) -> str:
    """Write the release checkpoint and return its final path.

    Args:
        in_file (str): A checkpoint saved by the Runner.
        out_file (str): Where to write; a ``.pth`` suffix is replaced by
            ``-<sha256[:8]>.pth``.
        save_keys (Sequence[str]): Top-level keys to keep. Defaults to
            ``('meta', 'state_dict')``.

    Returns:
        str: Path of the published file.
    """
    checkpoint = load_checkpoint_weights_only(in_file, map_location='cpu')
    if 'state_dict' not in checkpoint:
        raise KeyError(f'{in_file} has no "state_dict"; top-level keys: '
                       f'{sorted(checkpoint)}')
    for key in sorted(set(checkpoint) - set(save_keys)):
        print_log(f'dropping "{key}" (not in --save-keys)', logger='current')
        del checkpoint[key]

    mkdir_or_exist(osp.dirname(osp.abspath(out_file)))
    torch.save(checkpoint, out_file)
    stem = out_file[:-len('.pth')] if out_file.endswith('.pth') else out_file
    final_file = f'{stem}-{sha256_of(out_file)[:8]}.pth'
    os.replace(out_file, final_file)
    print_log(f'published {osp.abspath(final_file)}', logger='current')
    return final_file


def main() -> None:
    args = parse_args()
    publish(args.in_file, args.out_file, args.save_keys)


if __name__ == '__main__':
    main()
