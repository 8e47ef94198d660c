"""Render a model's predictions on one video of a config's test set.

Writes an MP4 (one frame per video frame, each instance coloured by its track
id) and a PNG contact sheet of the same frames, so results can be looked at
without a display.

Example:
    python tools/analysis_tools/render_predictions.py \
        configs/msts_vis/msts-vis_r18-tiny_1xb4-2k_synthetic.py \
        work_dirs/main_job/iter_2000.pth --video-index 0 \
        --out work_dirs/main_job/demo
"""
import argparse
import os
import os.path as osp

import cv2
import mmcv
import numpy as np
import torch
from mmdet.registry import DATASETS
from mmdet.structures import DetDataSample
from mmengine.config import DictAction
from mmengine.dataset import pseudo_collate
from mmengine.structures import InstanceData

from mmvis_msts.apis import init_model
from mmvis_msts.engine import VISLocalVisualizer


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Render predictions on one test video')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--video-index',
        type=int,
        default=0,
        help='index of the video in the test set')
    parser.add_argument(
        '--out',
        default='work_dirs/render',
        help='output prefix: writes <out>.mp4 and <out>.png')
    parser.add_argument(
        '--score-thr',
        type=float,
        default=0.3,
        help='draw predictions scoring at least this')
    parser.add_argument(
        '--min-side',
        type=int,
        default=256,
        help='upscale small frames so their short side is at least this')
    parser.add_argument('--fps', type=float, default=4.0)
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, as in tools/test.py')
    return parser.parse_args()


def upscale(frame: DetDataSample, image: np.ndarray, scale: int) -> np.ndarray:
    """Scale an image and its ``pred_track_instances`` by an integer factor.

    Masks are scaled by nearest neighbour so their pixels stay crisp.
    """
    if scale == 1:
        return image
    pred = frame.pred_track_instances
    scaled = InstanceData(
        bboxes=pred.bboxes * scale,
        scores=pred.scores,
        labels=pred.labels,
        instances_id=pred.instances_id)
    if len(pred) > 0:
        masks = np.asarray(pred.masks.cpu().numpy(
        ) if isinstance(pred.masks, torch.Tensor) else pred.masks).astype(
            np.uint8)
        masks = np.stack([
            cv2.resize(
                m, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
            for m in masks
        ])
        scaled.masks = torch.from_numpy(masks.astype(bool))
    else:
        h, w = image.shape[:2]
        scaled.masks = torch.zeros((0, h * scale, w * scale), dtype=bool)
    frame.pred_track_instances = scaled
    return cv2.resize(
        image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)


def contact_sheet(frames: list, columns: int = 4) -> np.ndarray:
    """Tile RGB frames of one size into a grid, row by row."""
    h, w = frames[0].shape[:2]
    rows = -(-len(frames) // columns)
    sheet = np.full((rows * h, min(columns, len(frames)) * w, 3),
                    255,
                    dtype=np.uint8)
    for i, frame in enumerate(frames):
        r, c = divmod(i, columns)
        sheet[r * h:(r + 1) * h, c * w:(c + 1) * w] = frame
    return sheet


def main() -> None:
    args = parse_args()
    model = init_model(
        args.config, args.checkpoint, cfg_options=args.cfg_options)
    cfg = model.cfg

    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    if not 0 <= args.video_index < len(dataset):
        raise IndexError(f'--video-index {args.video_index} is outside the '
                         f'{len(dataset)} videos of {cfg.filename}')
    with torch.no_grad():
        track_sample = model.test_step(
            pseudo_collate([dataset[args.video_index]]))[0]

    # mmdet's TrackLocalVisualizer needs seaborn for its track colours
    visualizer = VISLocalVisualizer(line_width=2)
    visualizer.dataset_meta = dataset.metainfo
    rendered = []
    for frame in track_sample.video_data_samples:
        image = mmcv.imread(frame.img_path, channel_order='rgb')
        scale = max(1, -(-args.min_side // min(image.shape[:2])))
        image = upscale(frame, image, scale)
        visualizer.add_datasample(
            'frame',
            image,
            data_sample=frame,
            draw_gt=False,
            pred_score_thr=args.score_thr)
        rendered.append(visualizer.get_image())

    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    h, w = rendered[0].shape[:2]
    writer = cv2.VideoWriter(f'{args.out}.mp4',
                             cv2.VideoWriter_fourcc(*'mp4v'), args.fps, (w, h))
    for frame in rendered:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    cv2.imwrite(f'{args.out}.png',
                cv2.cvtColor(contact_sheet(rendered), cv2.COLOR_RGB2BGR))
    print(f'Rendered {len(rendered)} frames of video '
          f'{track_sample.video_data_samples[0].video_id} to {args.out}.mp4 '
          f'and {args.out}.png')


if __name__ == '__main__':
    main()
