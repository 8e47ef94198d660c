# SeqFormer / MS-STS VIS schedule: AdamW, lr 2e-4 (backbone, sampling
# offsets and reference points x0.1), weight decay 1e-4, L2 grad clip 0.1,
# 12 epochs with x0.1 steps after epochs 4 and 10.

max_epochs = 12
# YouTube-VIS val has no public GT (the metric only writes the submission
# file), so validation runs once, after training
train_cfg = dict(
    type='EpochBasedTrainLoop',
    max_epochs=max_epochs,
    val_begin=max_epochs,
    val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

base_lr = 2e-4
# lr multipliers of SeqFormer's "lr_backbone" / "lr_linear_proj" groups
paramwise_cfg = dict(
    custom_keys=dict(
        backbone=dict(lr_mult=0.1),
        sampling_offsets=dict(lr_mult=0.1),
        reference_points=dict(lr_mult=0.1)))
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=base_lr, weight_decay=1e-4),
    clip_grad=dict(max_norm=0.1, norm_type=2),
    paramwise_cfg=paramwise_cfg)

param_scheduler = [
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[4, 10],
        gamma=0.1)
]

# 8 GPUs x 1 clip
auto_scale_lr = dict(enable=False, base_batch_size=8)
