# The CPU main job's schedule (tools/run_main_job.sh), shared by the tiny
# configs trained from scratch on the synthetic data set: 2,000 iterations of
# AdamW (lr 1e-3, weight decay 1e-4, L2 grad clip 1.0), 100 iterations of
# linear warm-up, then cosine decay to lr x 0.01; one checkpoint and one
# validation, at the end (the main job tests separately).
# It inherits the runtime because it sets hooks of it: mmengine does not
# let two bases of one config both define default_hooks.
_base_ = '../default_runtime.py'

max_iters = 2000
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

base_lr = 1e-3
warmup_iters = 100
# Models with a discriminator build their two optimizers from this one
# (`_base_.optim_wrapper.optimizer`).
optim_wrapper = dict(
    type='OptimWrapper',
    # fused: one kernel over all tensors of a param group (the CPU default
    # is a per-tensor loop)
    optimizer=dict(type='AdamW', lr=base_lr, weight_decay=1e-4, fused=True),
    clip_grad=dict(max_norm=1.0, norm_type=2))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.01,
        by_epoch=False,
        begin=0,
        end=warmup_iters),
    dict(
        type='CosineAnnealingLR',
        by_epoch=False,
        begin=warmup_iters,
        end=max_iters,
        T_max=max_iters - warmup_iters,
        eta_min=base_lr * 0.01)
]

# One default seed (weights, data order, augmentation), so that a fresh
# clone's main job repeats the figures of docs/main_job.md; other seeds with
# --cfg-options randomness.seed=N.
randomness = dict(seed=0)

default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(by_epoch=False, interval=max_iters))
# The CPU main job's torch threads follow the machine's load: one fewer
# while another process takes a core, back when it leaves (a waiting
# OpenMP thread stalls every parallel operator; docs/main_job.md, "Speed").
custom_hooks = [dict(type='CPUThreadsHook', interval=50)]
