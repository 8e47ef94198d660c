# Synthetic VIS, the embedded default data set: textured shapes (circle,
# triangle, square, star) moving, scaling, turning and occluding each other;
# train and val splits both with ground truth, so val reports a local mAP.
# Generate it first (about 30 s on one core, 42 MiB):
#   python tools/misc/generate_synthetic_vis.py --out data/synthetic_vis
#
# Clips, frame size and loaders are those of the CPU main job
# (tools/run_main_job.sh): 1 process x 4 clips of 3 frames on 2 cores. Every
# config trained on this set inherits them from here, so the configs that
# are compared on it (the tiny MS-STS config and its Mask2Former-VIS anchor)
# see the same data by construction.
#
# mmengine builds the pipelines and loaders below when it reads this file:
# a config that inherits it and assigns num_clip_frames or img_scale again
# changes only that variable, not the pipelines. Read the values from
# `_base_` (as the models' clip lengths do), and change a pipeline step with
# --cfg-options, e.g. train_dataloader.dataset.pipeline.0.num_frames=5

dataset_type = 'SyntheticVISDataset'
# read every frame's header when the dataset is built: frames of another
# size than the json says fail then, not in a worker (about 1 s for the
# train split; docs/reliability.md)
frame_check = 'header'
data_root = 'data/synthetic_vis/'
backend_args = None
# DataLoader workers of each loader: the 2 cores are for the model
# (persistent_workers needs >= 1).
num_workers = 1

# Frames per training clip: the key frame and its two neighbours (SeqFormer
# trains on 5-frame clips; 3 fit the CPU budget).
num_clip_frames = 3
# (long side, short side) limits of Resize. Default generated frames are
# 64-80 px high and 80-128 px wide, so this brings them all to a short side
# of about 80 px with a long side of at most 128 px (objects of 28-48 px: a
# short side of 80 px beat 64 px at the same training time,
# docs/main_job.md). Change it with the generator's --frame-height /
# --aspect-ratio.
img_scale = (128, 80)

train_pipeline = [
    # SeqFormer's clip: a key frame, a near frame on each side and
    # num_clip_frames - 3 others from the rest of the video, in time order
    # (frames repeat only in videos shorter than the clip).
    dict(type='SeqFormerClipSample', num_frames=num_clip_frames),
    dict(
        type='TransformBroadcaster',
        share_random_params=True,
        transforms=[
            dict(type='LoadImageFromFile', backend_args=backend_args),
            dict(type='LoadTrackAnnotations', with_mask=True),
            dict(type='Resize', scale=img_scale, keep_ratio=True),
            dict(type='RandomFlip', prob=0.5),
        ]),
    dict(type='PackTrackInputs'),
]
test_pipeline = [
    dict(
        type='TransformBroadcaster',
        transforms=[
            dict(type='LoadImageFromFile', backend_args=backend_args),
            dict(type='Resize', scale=img_scale, keep_ratio=True),
            dict(type='LoadTrackAnnotations', with_mask=True),
        ]),
    dict(type='PackTrackInputs'),
]

train_dataloader = dict(
    batch_size=4,
    num_workers=num_workers,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='TrackAspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        frame_check=frame_check,
        data_root=data_root,
        ann_file='annotations/train.json',
        data_prefix=dict(img_path='train/JPEGImages'),
        pipeline=train_pipeline))
# Whole videos, one per batch, in order: the metric evaluates video by video.
val_dataloader = dict(
    batch_size=1,
    num_workers=num_workers,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(
        type=dataset_type,
        frame_check=frame_check,
        data_root=data_root,
        ann_file='annotations/val.json',
        data_prefix=dict(img_path='val/JPEGImages'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader

# VISMetric: mmdet's YouTubeVISMetric made numpy-2 safe (mmvis_msts).
# The val split has ground truth, so it computes the mAP locally.
val_evaluator = dict(
    type='VISMetric', metric='youtube_vis_ap', format_only=False)
test_evaluator = val_evaluator
