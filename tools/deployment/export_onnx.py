"""Export the network step of a VIS model for one clip to ONNX.

The graph maps T preprocessed frames (1, T, 3, H', W') to the head's
predictions (``VISHeadOutputs``, last decoder layer); pre- and
post-processing stay in the package (``mmvis_msts.deploy``). The graph
serves videos of H x W pixels, and clips of T frames (with
``--dynamic-frames``: of any number of frames, traced with T).

Example:
    python tools/deployment/export_onnx.py \
        configs/msts_vis/msts-vis_r18-tiny_1xb4-2k_synthetic.py \
        work_dirs/main_job/iter_2000.pth \
        --frames 5 --shape 360 640 --out work_dirs/onnx/tiny_t5.onnx --check

See docs/deployment.md.
"""
import argparse
import os
import os.path as osp
import sys

import torch
from mmengine.config import DictAction
from mmengine.runner import set_random_seed

from mmvis_msts.apis import init_model
from mmvis_msts.deploy import (ORTClipNetwork, compare_networks, example_clip,
                               export_onnx)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Export the inference graph of one clip to ONNX')
    parser.add_argument('config', help='model config file')
    parser.add_argument(
        'checkpoint',
        nargs='?',
        help='checkpoint file; without it the weights are random')
    parser.add_argument(
        '--frames',
        type=int,
        required=True,
        help='frames T of a clip (with --dynamic-frames: of the clip traced '
        'and checked)')
    parser.add_argument(
        '--dynamic-frames',
        action='store_true',
        help='give the graph a dynamic T axis: the file serves clips of any '
        'number of frames')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        required=True,
        metavar=('H', 'W'),
        help='size of the video frames, before the test pipeline resizes '
        'them')
    parser.add_argument('--out', required=True, help='output .onnx file')
    parser.add_argument(
        '--opset', type=int, default=17, help='ONNX opset (>= 16)')
    parser.add_argument(
        '--seed',
        type=int,
        default=0,
        help='seed of the random weights (without a checkpoint) and of the '
        'example frames')
    parser.add_argument(
        '--check',
        action='store_true',
        help='run the file in onnxruntime on the example clip and print the '
        'largest differences to PyTorch')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, as tools/test.py')
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    set_random_seed(args.seed)
    try:
        model = init_model(args.config, args.checkpoint, 'cpu',
                           args.cfg_options)
    except (FileNotFoundError, ValueError) as error:
        print(f'export_onnx.py: error: {error}', file=sys.stderr)
        return 1
    if args.checkpoint is None:
        print('No checkpoint: exporting random weights.')
    inputs, video = example_clip(model, args.frames, args.shape, args.seed)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with torch.no_grad():
        meta = export_onnx(model, inputs, video, args.out, args.opset,
                           args.dynamic_frames)
    size_mib = osp.getsize(args.out) / 2**20
    frames = (f'any number of frames (traced with {meta.num_frames})'
              if meta.dynamic_frames else f'{meta.num_frames} frames')
    print(f'Wrote {args.out} ({size_mib:.1f} MiB): clips of '
          f'{frames} of {meta.ori_shape[0]}x'
          f'{meta.ori_shape[1]} (model input {meta.img_shape[0]}x'
          f'{meta.img_shape[1]} padded to {meta.input_shape[0]}x'
          f'{meta.input_shape[1]}), outputs {", ".join(meta.outputs)}')
    if args.check:
        report = compare_networks(model, ORTClipNetwork(args.out), inputs,
                                  video)
        print(report.summary())
    return 0


if __name__ == '__main__':
    sys.exit(main())
