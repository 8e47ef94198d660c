# The anchor of the main-job benchmark: mmdet's own Mask2Former-VIS
# (Mask2FormerVideo + Mask2FormerTrackHead) made tiny with the budget of the
# tiny MS-STS config, on the same data, clips, schedule and optimiser:
# ResNet-18 layout from scratch at half width (deep stem, GroupNorm), 64
# channels, 10 queries, 2 pixel-decoder encoder layers, 3 decoder layers,
# 3-frame training clips, 80 px short side. Used by
# tools/analysis_tools/benchmark_main_job.py; see docs/main_job.md.
custom_imports = dict(imports=['mmvis_msts'], allow_failed_imports=False)
_base_ = [
    '../_base_/datasets/synthetic_vis.py',
    '../_base_/default_runtime.py',
]

num_classes = 4
num_queries = 10
channels = 64
num_levels = 3
base_channels = 32
num_clip_frames = 3
img_scale = (128, 80)

model = dict(
    type='Mask2FormerVideo',
    data_preprocessor=dict(
        type='TrackDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_mask=True,
        pad_size_divisor=16),
    backbone=dict(
        type='ResNet',
        depth=18,
        base_channels=base_channels,
        deep_stem=True,  # the backbone of the tiny MS-STS config
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='GN', num_groups=8, requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    track_head=dict(
        type='Mask2FormerTrackHead',
        in_channels=[base_channels * 2**i for i in range(4)],
        strides=[4, 8, 16, 32],
        feat_channels=channels,
        out_channels=channels,
        num_classes=num_classes,
        num_queries=num_queries,
        num_frames=num_clip_frames,
        num_transformer_feat_level=num_levels,
        pixel_decoder=dict(
            type='MSDeformAttnPixelDecoder',
            num_outs=num_levels,
            norm_cfg=dict(type='GN', num_groups=16),
            act_cfg=dict(type='ReLU'),
            encoder=dict(  # DeformableDetrTransformerEncoder
                num_layers=2,
                layer_cfg=dict(
                    self_attn_cfg=dict(  # MultiScaleDeformableAttention
                        embed_dims=channels,
                        num_heads=4,
                        num_levels=num_levels,
                        num_points=4,
                        dropout=0.0,
                        batch_first=True),
                    ffn_cfg=dict(
                        embed_dims=channels,
                        feedforward_channels=2 * channels,
                        num_fcs=2,
                        ffn_drop=0.0,
                        act_cfg=dict(type='ReLU', inplace=True)))),
            positional_encoding=dict(num_feats=channels // 2, normalize=True)),
        enforce_decoder_input_project=False,
        positional_encoding=dict(
            type='SinePositionalEncoding3D',
            num_feats=channels // 2,
            normalize=True),
        transformer_decoder=dict(  # Mask2FormerTransformerDecoder
            return_intermediate=True,
            num_layers=3,
            layer_cfg=dict(
                self_attn_cfg=dict(
                    embed_dims=channels,
                    num_heads=4,
                    dropout=0.0,
                    batch_first=True),
                cross_attn_cfg=dict(
                    embed_dims=channels,
                    num_heads=4,
                    dropout=0.0,
                    batch_first=True),
                ffn_cfg=dict(
                    embed_dims=channels,
                    feedforward_channels=2 * channels,
                    num_fcs=2,
                    ffn_drop=0.0,
                    act_cfg=dict(type='ReLU', inplace=True))),
            init_cfg=None),
        loss_cls=dict(
            type='CrossEntropyLoss',
            use_sigmoid=False,
            loss_weight=2.0,
            reduction='mean',
            class_weight=[1.0] * num_classes + [0.1]),
        loss_mask=dict(
            type='CrossEntropyLoss',
            use_sigmoid=True,
            reduction='mean',
            loss_weight=5.0),
        loss_dice=dict(
            type='DiceLoss',
            use_sigmoid=True,
            activate=True,
            reduction='mean',
            naive_dice=True,
            eps=1.0,
            loss_weight=5.0),
        train_cfg=dict(
            # 80x128 frames have 640 mask pixels at stride 4
            num_points=256,
            oversample_ratio=3.0,
            importance_sample_ratio=0.75,
            assigner=dict(
                type='HungarianAssigner',
                match_costs=[
                    dict(type='ClassificationCost', weight=2.0),
                    dict(
                        type='CrossEntropyLossCost',
                        weight=5.0,
                        use_sigmoid=True),
                    dict(type='DiceCost', weight=5.0, pred_act=True, eps=1.0)
                ]),
            sampler=dict(type='MaskPseudoSampler'))),
    init_cfg=None)

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
train_dataloader = dict(
    batch_size=4, num_workers=1, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(num_workers=1, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 2000
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# the optimiser and schedule of the tiny MS-STS config
base_lr = 1e-3
warmup_iters = 100
optim_wrapper = dict(
    type='OptimWrapper',
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

default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters))
log_processor = dict(by_epoch=False)
