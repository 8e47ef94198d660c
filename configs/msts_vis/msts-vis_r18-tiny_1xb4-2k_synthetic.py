# Tiny MS-STS VIS for the CPU main job (tools/run_main_job.sh) on the
# synthetic data set. Everything of MS-STS stays on (MS-STS encoder, temporal
# attention decoder, adversarial fg/bg discriminator); only the sizes shrink
# so that training fits about 13-14 minutes on 2 CPU cores:
# - ResNet-18 layout from scratch at half width (base_channels=32, so
#   stages of 32/64/128/256 channels), deep stem, GroupNorm;
# - width 64, 10 queries, 2 encoder / 3 decoder layers, no dropout (a short
#   schedule on 1,200 videos under-fits rather than over-fits);
# - 3-frame training clips (the key frame and its two neighbours); test runs
#   whole videos;
# - class loss weight 5 (SeqFormer: 2): trained from scratch, the queries
#   find the objects long before they tell the shapes apart.
# Generate the data first: python tools/misc/generate_synthetic_vis.py
# (tools/run_main_job.sh does all of it; see docs/main_job.md)
custom_imports = dict(imports=['mmvis_msts'], allow_failed_imports=False)
_base_ = [
    '../_base_/models/msts-vis_r50.py',
    '../_base_/datasets/synthetic_vis.py',
    '../_base_/default_runtime.py',
]

num_classes = 4
num_queries = 10
embed_dims = 64
num_levels = 4
base_channels = 32
num_clip_frames = 3
# frames are generated 64-80 px high: a short side of 80 px (objects of
# 28-48 px) beat 64 px at the same training time (docs/main_job.md)
img_scale = (128, 80)
dropout = 0.0

deform_attn_cfg = dict(
    embed_dims=embed_dims,
    num_heads=4,
    num_levels=num_levels,
    num_points=4,
    dropout=dropout,
    batch_first=True)
ffn_cfg = dict(
    embed_dims=embed_dims,
    feedforward_channels=128,
    num_fcs=2,
    ffn_drop=dropout,
    act_cfg=dict(type='ReLU', inplace=True))
mha_cfg = dict(
    embed_dims=embed_dims,
    num_heads=4,
    attn_drop=dropout,
    dropout_layer=dict(type='Dropout', drop_prob=dropout),
    batch_first=True)

model = dict(
    # padded to a multiple of 16, not 32: an 80 px high batch stays 80 px
    # instead of 96 (about 10 % less time per iteration)
    data_preprocessor=dict(pad_size_divisor=16),
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=18,
        base_channels=base_channels,
        # three 3x3 convs instead of the 7x7 and GroupNorm instead of BN:
        # together they lifted the class accuracy of the found tracks from
        # 0.55 to 0.73-0.84 (each alone: no clear gain; docs/main_job.md)
        deep_stem=True,
        num_stages=4,
        out_indices=(1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='GN', num_groups=8, requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    neck=dict(
        in_channels=[base_channels * 2, base_channels * 4, base_channels * 8],
        out_channels=embed_dims,
        norm_cfg=dict(type='GN', num_groups=16)),
    track_head=dict(
        num_classes=num_classes,
        num_queries=num_queries,
        num_feature_levels=num_levels,
        positional_encoding=dict(num_feats=embed_dims // 2),
        loss_cls=dict(loss_weight=5.0),
        encoder=dict(  # MSSTSEncoder
            _delete_=True,
            type='MSSTSEncoder',
            num_layers=2,
            layer_cfg=dict(
                self_attn_cfg=deform_attn_cfg,
                ffn_cfg=ffn_cfg,
                msts_cfg=dict(
                    type='MSSTSAttention',
                    embed_dims=embed_dims,
                    inner_dims=32,
                    num_heads=4,
                    feedforward_channels=64,
                    dropout=dropout))),
        decoder=dict(  # TemporalAttnDecoder
            _delete_=True,
            type='TemporalAttnDecoder',
            num_layers=3,
            layer_cfg=dict(
                self_attn_cfg=mha_cfg,
                cross_attn_cfg=deform_attn_cfg,
                ffn_cfg=ffn_cfg,
                temporal_attn_cfg=mha_cfg)),
        mask_head=dict(
            in_channels=embed_dims,
            branch_channels=(32, 8),
            # trained from scratch: offsets relative to the image size
            rel_coord_normalize=True)),
    discriminator=dict(
        in_channels=embed_dims, channels=16, head_channels=(32, 64)),
    adv_loss_weight=0.1)

train_pipeline = [
    dict(type='SeqFormerClipSample', num_frames=num_clip_frames),
    dict(
        type='TransformBroadcaster',
        share_random_params=True,
        transforms=[
            dict(type='LoadImageFromFile', backend_args=None),
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
            dict(type='LoadImageFromFile', backend_args=None),
            dict(type='Resize', scale=img_scale, keep_ratio=True),
            dict(type='LoadTrackAnnotations', with_mask=True),
        ]),
    dict(type='PackTrackInputs'),
]
# one loader worker: the 2 cores are for the model
train_dataloader = dict(
    batch_size=4, num_workers=1, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(num_workers=1, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 2000
# checkpoint + validation only at the end: the main job tests separately
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

base_lr = 1e-3
warmup_iters = 100
optim_wrapper = dict(
    constructor='VISAdversarialOptimWrapperConstructor',
    model=dict(
        type='OptimWrapper',
        # fused: one kernel over all tensors of a param group (the CPU
        # default is a per-tensor loop)
        optimizer=dict(
            type='AdamW', lr=base_lr, weight_decay=1e-4, fused=True),
        clip_grad=dict(max_norm=1.0, norm_type=2),
        # the backbone trains from scratch, so at the full lr
        paramwise_cfg=dict(
            custom_keys=dict(
                sampling_offsets=dict(lr_mult=0.1),
                reference_points=dict(lr_mult=0.1)))),
    discriminator=dict(
        type='OptimWrapper',
        optimizer=dict(
            type='AdamW', lr=base_lr, weight_decay=1e-4, fused=True)))
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

default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters))
log_processor = dict(by_epoch=False)
