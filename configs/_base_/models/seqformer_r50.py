# SeqFormer, ResNet-50 (docs/design.md §2): the base of MS-STS VIS, which
# msts-vis_r50.py builds by switching the three additions on.
num_classes = 40
num_queries = 300
embed_dims = 256
num_levels = 4
num_layers = 6

# MSDeformAttn of the encoder self-attention and decoder cross-attention
deform_attn_cfg = dict(
    embed_dims=embed_dims,
    num_heads=8,
    num_levels=num_levels,
    num_points=4,
    dropout=0.1,
    batch_first=True)
ffn_cfg = dict(
    embed_dims=embed_dims,
    feedforward_channels=1024,
    num_fcs=2,
    ffn_drop=0.1,
    act_cfg=dict(type='ReLU', inplace=True))
mha_cfg = dict(
    embed_dims=embed_dims,
    num_heads=8,
    attn_drop=0.1,
    dropout_layer=dict(type='Dropout', drop_prob=0.1),
    batch_first=True)

model = dict(
    type='MSSTSVIS',
    data_preprocessor=dict(
        type='TrackDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_mask=True,
        pad_size_divisor=32),
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        style='pytorch',
        # COCO-pretrained weights come via `load_from` (a user-given path)
        init_cfg=None),
    neck=dict(
        type='ChannelMapper',
        in_channels=[512, 1024, 2048],
        kernel_size=1,
        out_channels=embed_dims,
        # SeqFormer's input projections keep their conv bias before GN
        bias=True,
        act_cfg=None,
        norm_cfg=dict(type='GN', num_groups=32),
        num_outs=num_levels),
    track_head=dict(
        type='MSSTSVISHead',
        num_classes=num_classes,
        num_queries=num_queries,
        num_feature_levels=num_levels,
        positional_encoding=dict(
            num_feats=embed_dims // 2, normalize=True, offset=-0.5),
        encoder=dict(  # SeqFormerEncoder
            type='SeqFormerEncoder',
            num_layers=num_layers,
            layer_cfg=dict(self_attn_cfg=deform_attn_cfg, ffn_cfg=ffn_cfg)),
        decoder=dict(  # SeqFormerDecoder
            type='SeqFormerDecoder',
            num_layers=num_layers,
            layer_cfg=dict(
                self_attn_cfg=mha_cfg,
                cross_attn_cfg=deform_attn_cfg,
                ffn_cfg=ffn_cfg)),
        mask_head=dict(  # DynamicConvMaskHead
            type='DynamicConvMaskHead',
            in_channels=embed_dims,
            num_levels=3,
            branch_channels=(64, 8),
            dyn_channels=8,
            num_dyn_layers=3,
            controller_layers=3,
            use_rel_coords=True,
            # raw pixels as SeqFormer, so SeqFormer checkpoints load exactly
            rel_coord_normalize=False,
            upsample_factor=2),
        loss_cls=dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=2.0),
        loss_bbox=dict(type='L1Loss', loss_weight=5.0),
        loss_iou=dict(type='GIoULoss', loss_weight=2.0),
        loss_mask=dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=2.0),
        loss_dice=dict(
            type='DiceLoss',
            use_sigmoid=True,
            activate=True,
            naive_dice=True,
            eps=1.0,
            loss_weight=5.0),
        # SeqFormer supervises absent frames' boxes towards an all-zero box
        supervise_absent_boxes=True,
        train_cfg=dict(
            assigner=dict(
                type='HungarianAssigner',
                match_costs=[
                    dict(type='FocalLossCost', weight=2.0),
                    # with every frame supervised, the same either way
                    dict(
                        type='ClipBBoxL2Cost',
                        weight=5.0,
                        normalize_valid_frames=False),
                    dict(type='ClipGIoUCost', weight=2.0)
                ])),
        # Videos of up to clip_window frames run in one pass, the paper's
        # protocol (YouTube-VIS videos are 3-6 s at every 5th frame of 30
        # fps: about 18-36 frames); longer ones run clip-wise in windows of
        # 36 frames every 18, in memory that does not grow with their
        # length (docs/inference.md, section 4; clip_window=None: always
        # one pass).
        test_cfg=dict(
            max_per_video=10,
            mask_thr=0.5,
            drop_empty=True,
            clip_window=36,
            clip_stride=18)))
