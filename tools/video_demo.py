"""Segment and track the instances of your own video and draw them.

Writes an MP4 with the input's frame size and frame rate (coloured masks,
boxes, track ids, class names and scores) and, with ``--out-json``, the
YouTube-VIS results json of the video. Without ``--checkpoint`` the model
keeps its random initial weights, which shows the pipeline end to end.

Example:
    python tools/video_demo.py my_video.mp4 \
        configs/msts_vis/msts-vis_r18-tiny_1xb4-2k_synthetic.py \
        --checkpoint work_dirs/main_job/iter_2000.pth \
        --out work_dirs/demo/my_video.mp4 \
        --out-json work_dirs/demo/my_video.json

A long video runs window by window (flat memory, masks kept as RLE) with
``--window 20 --stride 10``, or when the config's ``test_cfg`` says so for
its length; see docs/inference.md. ``--flat-heap`` also keeps the C heap
from creeping up over a long video (glibc's mmap threshold fixed at 1 MiB,
``mmvis_msts.utils.heap.fix_mmap_threshold``), at a cost in frames/s.
``--bf16`` runs the network in bfloat16 autocast and ``--compile`` under
``torch.compile``; together they are the fastest on a CPU with AMX or
AVX512-BF16 once compiled (docs/inference.md).
"""
import argparse
import os.path as osp
import sys
import time

import cv2
import mmcv
import mmengine
from mmengine.config import DictAction
from mmengine.runner import set_random_seed
from tqdm import tqdm

from mmvis_msts.apis import (VideoFrames, VideoInputError, compile_model,
                             inference_video, init_model, with_dense_masks)
from mmvis_msts.engine import VISLocalVisualizer
from mmvis_msts.evaluation import ytvis_results
from mmvis_msts.utils import add_compile_argument
from mmvis_msts.utils.heap import fix_mmap_threshold


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Segment and track the instances of a video')
    parser.add_argument(
        'input', help='video file (.mp4, .avi, ...) or folder of frames')
    parser.add_argument('config', help='model config file')
    parser.add_argument(
        '--checkpoint',
        help='checkpoint file; without it the weights are random')
    parser.add_argument('--out', required=True, help='output .mp4 file')
    parser.add_argument(
        '--out-json', help='also write the YouTube-VIS results json here')
    parser.add_argument(
        '--device', default='cpu', help='device, e.g. cpu or cuda:0')
    parser.add_argument(
        '--score-thr',
        type=float,
        default=0.3,
        help='draw tracks scoring more than this')
    parser.add_argument(
        '--fps',
        type=float,
        default=10.0,
        help='frame rate of the output for a frame folder (a video file '
        'keeps its own)')
    parser.add_argument(
        '--window',
        type=int,
        help='frames per window of the clip-wise mode (videos longer than '
        'one window run window by window; 0: the whole video in one pass); '
        'default: the config\'s test_cfg')
    parser.add_argument(
        '--stride',
        type=int,
        help='frames between window starts (with --window; default '
        'window // 2)')
    parser.add_argument(
        '--seed',
        type=int,
        default=0,
        help='random seed set before the model is built, so that a run '
        'without --checkpoint gives the same random weights every time')
    parser.add_argument(
        '--flat-heap',
        action='store_true',
        help='give large C blocks their own mappings, so that the peak '
        'memory of a long clip-wise run does not creep up with its length '
        '(glibc; slower: docs/inference.md)')
    parser.add_argument(
        '--bf16',
        action='store_true',
        help='run the network in bfloat16 autocast (faster on CPUs with '
        'AVX512-BF16 or AMX and on GPUs: docs/inference.md)')
    add_compile_argument(parser, 'each new window length or frame size')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, as in tools/test.py')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if not args.out.lower().endswith('.mp4'):
        raise ValueError(f'--out must name an .mp4 file, got {args.out}')
    if args.flat_heap and not fix_mmap_threshold():
        print('--flat-heap: not glibc, malloc settings unchanged')
    frames = VideoFrames(args.input)
    set_random_seed(args.seed)
    model = init_model(args.config, args.checkpoint, args.device,
                       args.cfg_options)
    if args.compile:
        parts = compile_model(model, backend=args.compile)
        print(f'torch.compile ({args.compile}): {", ".join(parts)}; the '
              'first window of each new size compiles (minutes at R-50 size '
              'on a CPU) before its frames show')
    if args.checkpoint is None:
        print('No --checkpoint: the model has random weights, so its masks '
              'and classes are meaningless; this run only shows the '
              'pipeline.')

    start = time.perf_counter()
    result = inference_video(
        model,
        frames,
        progress=True,
        window=args.window,
        stride=args.stride,
        bf16=args.bf16)
    seconds = time.perf_counter() - start
    print(f'{len(result)} frames segmented in {seconds:.1f} s '
          f'({len(result) / seconds:.2f} frames/s, reading and model)')

    visualizer = VISLocalVisualizer(line_width=2)
    visualizer.dataset_meta = model.dataset_meta
    fps = frames.fps or args.fps
    height, width = result[0].ori_shape[:2]
    mmengine.mkdir_or_exist(osp.dirname(osp.abspath(args.out)))
    writer = cv2.VideoWriter(args.out, cv2.VideoWriter_fourcc(*'mp4v'), fps,
                             (width, height))
    if not writer.isOpened():
        raise OSError(f'OpenCV cannot write the video {args.out}')
    try:
        for image, frame in tqdm(
                zip(frames, result.video_data_samples),
                total=len(result),
                unit='frame',
                desc='draw + write'):
            visualizer.add_datasample(
                'frame',
                mmcv.bgr2rgb(image),
                data_sample=with_dense_masks(frame),
                draw_gt=False,
                pred_score_thr=args.score_thr)
            writer.write(mmcv.rgb2bgr(visualizer.get_image()))
    finally:
        writer.release()
    print(f'Wrote {len(result)} frames ({width}x{height}, {fps:g} fps) to '
          f'{args.out}')
    if args.out_json:
        tracks = ytvis_results(result)
        mmengine.mkdir_or_exist(osp.dirname(osp.abspath(args.out_json)))
        mmengine.dump(tracks, args.out_json, file_format='json')
        print(f'Wrote {len(tracks)} tracks (YouTube-VIS results) to '
              f'{args.out_json}')


if __name__ == '__main__':
    try:
        main()
    except (FileNotFoundError, VideoInputError) as err:
        sys.exit(f'video_demo.py: error: {err}')
