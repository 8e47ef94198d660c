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
    '../_base_/backbones/resnet18-tiny.py',
    '../_base_/datasets/synthetic_vis.py',
    '../_base_/schedules/schedule_2k.py',
]

num_classes = 4
num_queries = 10
embed_dims = 64
num_levels = 4
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

# input side of the Mask2Former-VIS anchor, in place of the R-50 base's
model = dict(
    data_preprocessor=dict(_base_.tiny_data_preprocessor, _delete_=True),
    # stages 2-4 at strides 4/8/16 instead of 8/16/32, so that the encoder's
    # stride-8 level is three stages deep, and the neck adds strides 32 and
    # 64: mAP 0.283 -> 0.312 over 3 seeds, at 1.34x the time of a training
    # step (docs/main_job.md, "Tuning, round 4")
    backbone=dict(
        _base_.tiny_backbone,
        _delete_=True,
        strides=(1, 1, 2, 2),
        out_indices=(2, 3)),
    neck=dict(
        in_channels=_base_.tiny_backbone_channels[2:],
        out_channels=embed_dims,
        norm_cfg=dict(type='GN', num_groups=16)),
    track_head=dict(
        num_classes=num_classes,
        num_queries=num_queries,
        # with --bf16 only the backbone and neck run in bfloat16: at width
        # 64 the head's casts cost more than they save (docs/benchmarks.md)
        autocast=False,
        num_feature_levels=num_levels,
        positional_encoding=dict(num_feats=embed_dims // 2),
        # the val split's videos (6-12 frames) run whole; longer ones in the
        # windows that did best on the long split (docs/inference.md)
        test_cfg=dict(clip_window=12, clip_stride=6),
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
    # with an entry at the mask stride: the predicted and GT foreground
    # differ in too few stride-8 pixels for D to tell them apart
    # (docs/design.md §3c, docs/main_job.md "A discriminator that learns")
    discriminator=dict(
        in_channels=embed_dims,
        channels=16,
        head_channels=(32, 64),
        mask_stride_channels=16),
    # D alone for 300 of the 2,000 iterations, then the generator term
    # ramps over 200 to 0.02, a fifth of the default weight: a learning D
    # at 0.1 cost AP (AdversarialLoss, docs/design.md §3c)
    loss_adv=dict(warmup_iters=300, ramp_iters=200, loss_weight=0.02))

# the model's own optimiser settings are the schedule's; the discriminator
# gets the same AdamW without clipping, at twice the lr (2e-3: D then passes
# 0.75 accuracy on predicted masks, docs/main_job.md)
optim_wrapper = dict(
    _delete_=True,
    constructor='VISAdversarialOptimWrapperConstructor',
    model=dict(
        _base_.optim_wrapper,
        # the backbone trains from scratch, so at the full lr
        paramwise_cfg=dict(
            custom_keys=dict(
                sampling_offsets=dict(lr_mult=0.1),
                reference_points=dict(lr_mult=0.1)))),
    discriminator=dict(
        type='OptimWrapper',
        optimizer=dict(_base_.optim_wrapper.optimizer, lr=2e-3)))
