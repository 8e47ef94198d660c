# The anchor of the main-job benchmark: mmdet's own Mask2Former-VIS
# (Mask2FormerVideo + Mask2FormerTrackHead) made tiny: 64 channels, 10
# queries, 2 pixel-decoder encoder layers, 3 decoder layers. Backbone, input
# padding, data (3-frame clips, 80 px short side, loaders) and schedule come
# from the same bases as the tiny MS-STS config's, so the two compare on one
# budget by construction. Used by tools/analysis_tools/benchmark_main_job.py;
# see docs/main_job.md.
custom_imports = dict(imports=['mmvis_msts'], allow_failed_imports=False)
_base_ = [
    '../_base_/backbones/resnet18-tiny.py',
    '../_base_/datasets/synthetic_vis.py',
    '../_base_/schedules/schedule_2k.py',
]

num_classes = 4
num_queries = 10
channels = 64
num_levels = 3

ffn_cfg = dict(
    embed_dims=channels,
    feedforward_channels=2 * channels,
    num_fcs=2,
    ffn_drop=0.0,
    act_cfg=dict(type='ReLU', inplace=True))
mha_cfg = dict(embed_dims=channels, num_heads=4, dropout=0.0, batch_first=True)

model = dict(
    type='Mask2FormerVideo',
    data_preprocessor=_base_.tiny_data_preprocessor,
    # the backbone of the tiny MS-STS config, all four stages
    backbone=_base_.tiny_backbone,
    track_head=dict(
        type='Mask2FormerTrackHead',
        in_channels=_base_.tiny_backbone_channels,
        strides=[4, 8, 16, 32],
        feat_channels=channels,
        out_channels=channels,
        num_classes=num_classes,
        num_queries=num_queries,
        num_frames=_base_.num_clip_frames,
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
                    ffn_cfg=ffn_cfg)),
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
                self_attn_cfg=mha_cfg, cross_attn_cfg=mha_cfg,
                ffn_cfg=ffn_cfg),
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
