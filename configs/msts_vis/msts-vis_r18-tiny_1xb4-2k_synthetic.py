# Tiny MS-STS VIS for CPU runs on the synthetic data set: ResNet-18 from
# scratch (trainable BN), width 64, 10 queries, 2 encoder / 3 decoder layers,
# ~80 px frames, 1 GPU (or CPU) x 4 clips x 5 frames, 2k iterations.
# Generate the data first: python tools/misc/generate_synthetic_vis.py
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

deform_attn_cfg = dict(
    embed_dims=embed_dims,
    num_heads=4,
    num_levels=num_levels,
    num_points=4,
    dropout=0.1,
    batch_first=True)
ffn_cfg = dict(
    embed_dims=embed_dims,
    feedforward_channels=256,
    num_fcs=2,
    ffn_drop=0.1,
    act_cfg=dict(type='ReLU', inplace=True))
mha_cfg = dict(
    embed_dims=embed_dims,
    num_heads=4,
    attn_drop=0.1,
    dropout_layer=dict(type='Dropout', drop_prob=0.1),
    batch_first=True)

model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=18,
        num_stages=4,
        out_indices=(1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    neck=dict(
        in_channels=[128, 256, 512],
        out_channels=embed_dims,
        norm_cfg=dict(type='GN', num_groups=16)),
    track_head=dict(
        num_classes=num_classes,
        num_queries=num_queries,
        num_feature_levels=num_levels,
        positional_encoding=dict(num_feats=embed_dims // 2),
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
                    dropout=0.1))),
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

train_dataloader = dict(batch_size=4)

max_iters = 2000
train_cfg = dict(
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=500)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

base_lr = 2e-4
optim_wrapper = dict(
    constructor='VISAdversarialOptimWrapperConstructor',
    model=dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=base_lr, weight_decay=1e-4),
        clip_grad=dict(max_norm=0.1, norm_type=2),
        # the backbone trains from scratch, so at the full lr
        paramwise_cfg=dict(
            custom_keys=dict(
                sampling_offsets=dict(lr_mult=0.1),
                reference_points=dict(lr_mult=0.1)))),
    discriminator=dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=base_lr, weight_decay=1e-4)))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(
        type='MultiStepLR',
        by_epoch=False,
        begin=0,
        end=max_iters,
        milestones=[1500],
        gamma=0.1)
]

default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=500))
log_processor = dict(by_epoch=False)
