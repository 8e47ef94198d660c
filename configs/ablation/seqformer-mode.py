# Ablation (tools/analysis_tools/ablation.py): the main-job config in
# SeqFormer mode, all three additions off (SeqFormer encoder and decoder, no
# discriminator, one optimiser). Everything else is the main-job config's,
# including its two deviations from SeqFormer (supervise_absent_boxes=False,
# the L2 box cost normalised over valid frames, docs/design.md §5.1), so
# each one-addition variant differs from this one in its addition only.
# The additions are kept here for the variants built on this file.
_base_ = '../msts_vis/msts-vis_r18-tiny_1xb4-2k_synthetic.py'

msts_encoder = _base_.model.track_head.encoder
temporal_decoder = _base_.model.track_head.decoder
discriminator = _base_.model.discriminator
adversarial_optim_wrapper = _base_.optim_wrapper

model = dict(
    track_head=dict(
        encoder=dict(
            _delete_=True,
            type='SeqFormerEncoder',
            num_layers=msts_encoder.num_layers,
            layer_cfg=dict(
                self_attn_cfg=_base_.deform_attn_cfg, ffn_cfg=_base_.ffn_cfg)),
        decoder=dict(
            _delete_=True,
            type='SeqFormerDecoder',
            num_layers=temporal_decoder.num_layers,
            layer_cfg=dict(
                self_attn_cfg=_base_.mha_cfg,
                cross_attn_cfg=_base_.deform_attn_cfg,
                ffn_cfg=_base_.ffn_cfg))),
    discriminator=None)
# the main-job config's model optimiser, alone
optim_wrapper = dict(_base_.optim_wrapper.model, _delete_=True)
