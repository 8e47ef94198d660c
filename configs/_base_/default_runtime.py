# Runtime defaults of mmvis-msts (own file: inheriting mmdet::_base_ would
# need pkg_resources at config time with mmengine 0.10.7).
default_scope = 'mmdet'

# VISRunner = mmengine Runner + weights-only checkpoint loading that accepts
# mmengine's own checkpoints on torch>=2.6, CPU (gloo) distributed runs and
# the DDP wrapper that fits the model. Named with its scope: the tools
# (this repo's and mmdet's own) build it from mmengine's root RUNNERS before
# any default scope is set, and the root finds 'mmdet.X' in its mmdet child.
runner_type = 'mmdet.VISRunner'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    # iteration-based logging: "Iter(train) [ 50/6000] ... eta: ..."; the
    # test metrics json written by rank 0 only (mmengine writes it on all)
    logger=dict(type='VISLoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # CheckpointHook whose last_checkpoint is written atomically and which
    # deletes old checkpoints only after the new one is complete
    checkpoint=dict(
        type='VISCheckpointHook',
        by_epoch=False,
        interval=2000,
        save_last=True,
        max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # TrackVisualizationHook with per-video output folders (VIS layout)
    visualization=dict(type='VISVisualizationHook', draw=False))

env_cfg = dict(
    cudnn_benchmark=False,
    # file_system: DataLoader workers hand tensors over by shared-memory
    # file name; torch's default passes each tensor's file descriptor
    # through a socket handshake, 40 per batch of the main job, which was
    # most of its 0.05-0.08 s of data_time an iteration (VISRunner,
    # docs/benchmarks.md "The DataLoader's hand-over")
    mp_cfg=dict(
        mp_start_method='fork',
        opencv_num_threads=0,
        sharing_strategy='file_system'),
    # 'auto': nccl when CUDA is available, gloo otherwise (VISRunner).
    dist_cfg=dict(backend='auto'))

vis_backends = [dict(type='LocalVisBackend')]
# mmdet's TrackLocalVisualizer that can also draw ground truth (test.py
# --show-dir on annotated splits); see mmvis_msts/engine/visualizer.py.
visualizer = dict(
    type='VISLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)

log_level = 'INFO'
load_from = None
resume = False
