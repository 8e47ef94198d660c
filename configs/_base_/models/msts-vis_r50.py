# MS-STS VIS, ResNet-50 (docs/design.md §3): SeqFormer plus (a) the MS-STS
# branch in every encoder layer, (b) temporal attention in every decoder
# layer and (c) the training-only fg/bg discriminator.
_base_ = './seqformer_r50.py'

embed_dims = _base_.embed_dims
# the decoder's temporal attention has the settings of its self-attention
mha_cfg = _base_.mha_cfg

model = dict(
    track_head=dict(
        encoder=dict(  # MSSTSEncoder
            type='MSSTSEncoder',
            layer_cfg=dict(
                msts_cfg=dict(
                    type='MSSTSAttention',
                    embed_dims=embed_dims,
                    inner_dims=64,
                    num_heads=4,
                    feedforward_channels=256,
                    dropout=0.1))),
        decoder=dict(  # TemporalAttnDecoder
            type='TemporalAttnDecoder',
            layer_cfg=dict(temporal_attn_cfg=mha_cfg)),
        # frames where an instance is absent get no box loss or box cost,
        # and the L2 box cost averages over the frames that count, as the
        # GIoU cost does (docs/design.md §5.1); SeqFormer: True / False
        supervise_absent_boxes=False,
        train_cfg=dict(
            assigner=dict(match_costs=[
                dict(type='FocalLossCost', weight=2.0),
                dict(
                    type='ClipBBoxL2Cost',
                    weight=5.0,
                    normalize_valid_frames=True),
                dict(type='ClipGIoUCost', weight=2.0)
            ]))),
    discriminator=dict(  # FgBgDiscriminator, training only
        type='FgBgDiscriminator',
        in_channels=embed_dims,
        num_levels=3,
        channels=64,
        head_channels=(128, 256)),
    # none of this is given by the paper (docs/design.md §3c, §6.4)
    loss_adv=dict(
        type='AdversarialLoss',
        gan_type='hinge',
        loss_weight=0.1,
        # D learns alone first, then the generator term ramps up
        warmup_iters=1000,
        ramp_iters=1000),
    # confident false positives enter the fake map
    num_unmatched_queries=10)
