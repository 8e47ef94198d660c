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
        # frames where an instance is absent get no box loss
        supervise_absent_boxes=False),
    discriminator=dict(  # FgBgDiscriminator, training only
        type='FgBgDiscriminator',
        in_channels=embed_dims,
        channels=64,
        head_channels=(128, 256)),
    # not given by the paper (docs/design.md §6.4)
    adv_loss_weight=0.1)
