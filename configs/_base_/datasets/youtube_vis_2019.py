# YouTube-VIS 2019 with the SeqFormer / MS-STS VIS training recipe.
# Data layout (mmdet's converter, tools/dataset_converters/youtubevis2coco.py
# of mmdetection, run with --version 2019):
#   data/youtube_vis_2019/annotations/youtube_vis_2019_{train,valid}.json
#   data/youtube_vis_2019/{train,valid}/JPEGImages/<video>/<frame>.jpg

# mmdet's YouTubeVISDataset with the project's checks of the annotations
# and frames when it is built (docs/reliability.md)
dataset_type = 'CheckedYouTubeVISDataset'
data_root = 'data/youtube_vis_2019/'
dataset_version = data_root[-5:-1]  # '2019' or '2021'
backend_args = None

# T, frames per training clip: the anchor, one frame 1-3 frames before and
# one 1-3 after it, and T - 3 global frames (SeqFormerClipSample).
num_frames = 5
# Multi-scale training: short side from this list, long side at most 768.
train_short_sides = (288, 320, 352, 392, 416, 448, 480, 512)
train_max_long_side = 768
# Random-size-crop branch: short side 400/500/600, then a crop of 384-600 px
# (height and width drawn separately), then the multi-scale resize.
crop_short_sides = (400, 500, 600)
crop_size_range = (384, 600)
# Test: short side 360 (paper / SeqFormer inference.py). mmdet's base uses
# scale (640, 360), which also caps the long side at 640; SeqFormer does not.
test_short_side = 360
# A long-side limit no image reaches: Resize then only fixes the short side.
unbounded_long_side = 10000

train_scales = [(train_max_long_side, s) for s in train_short_sides]
# SeqFormer's RandomSelect: plain multi-scale resize, or resize + crop +
# multi-scale resize, with equal probability. The random choices are made
# once per clip (TransformBroadcaster(share_random_params=True)).
# SharedRandomChoice = mmcv's RandomChoice, fixed to work in a broadcaster.
clip_resize = dict(
    type='SharedRandomChoice',
    transforms=[
        [
            dict(
                type='RandomChoiceResize',
                scales=train_scales,
                keep_ratio=True)
        ],
        [
            dict(
                type='RandomChoiceResize',
                scales=[(unbounded_long_side, s) for s in crop_short_sides],
                keep_ratio=True),
            dict(
                type='RandomCrop',
                crop_type='absolute_range',
                crop_size=crop_size_range,
                allow_negative_crop=True,
                recompute_bbox=True),
            dict(
                type='RandomChoiceResize',
                scales=train_scales,
                keep_ratio=True),
        ],
    ])

train_pipeline = [
    dict(
        type='SeqFormerClipSample', num_frames=num_frames, local_range=(1, 3)),
    dict(
        type='TransformBroadcaster',
        share_random_params=True,
        transforms=[
            dict(type='LoadImageFromFile', backend_args=backend_args),
            dict(type='LoadTrackAnnotations', with_mask=True),
            dict(type='RandomFlip', prob=0.5),
            dict(type='PhotoMetricDistortion'),
            clip_resize,
        ]),
    # A crop may cut every object out: draw another clip, as SeqFormer does.
    dict(type='DropEmptyClip'),
    dict(type='PackTrackInputs'),
]
test_pipeline = [
    dict(
        type='TransformBroadcaster',
        transforms=[
            dict(type='LoadImageFromFile', backend_args=backend_args),
            dict(
                type='Resize',
                scale=(unbounded_long_side, test_short_side),
                keep_ratio=True),
            dict(type='LoadTrackAnnotations', with_mask=True),
        ]),
    dict(type='PackTrackInputs'),
]

train_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='TrackAspectRatioBatchSampler'),
    # One sample per annotated frame, anchored at it (SeqFormer's epoch). For
    # mmdet's video-level sampling (one clip per video per epoch, random
    # anchor) use the inner dataset directly.
    dataset=dict(
        type='FrameLevelVideoDataset',
        dataset=dict(
            type=dataset_type,
            data_root=data_root,
            dataset_version=dataset_version,
            ann_file=f'annotations/youtube_vis_{dataset_version}_train.json',
            data_prefix=dict(img_path='train/JPEGImages'),
            pipeline=train_pipeline,
            backend_args=backend_args)))
# Whole videos, one per batch, in order: the metric works video by video.
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        dataset_version=dataset_version,
        ann_file=f'annotations/youtube_vis_{dataset_version}_valid.json',
        data_prefix=dict(img_path='valid/JPEGImages'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

# The valid split has no public ground truth: write the server submission
# (<prefix>.submission_file.zip with results.json inside) and score nothing.
val_evaluator = dict(
    type='VISMetric',
    metric='youtube_vis_ap',
    format_only=True,
    outfile_prefix=f'./work_dirs/vis_results/youtube_vis_{dataset_version}')
test_evaluator = val_evaluator
