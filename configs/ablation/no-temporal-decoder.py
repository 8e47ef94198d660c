# Ablation: SeqFormer mode + the MS-STS encoder attention (§3a) + the fg/bg
# discriminator (§3c): the main-job config without the decoder temporal
# attention, the addition that cost AP on the normal split
# (docs/main_job.md, "Results: each addition alone").
_base_ = './seqformer-mode.py'
model = dict(
    track_head=dict(encoder=dict(_base_.msts_encoder, _delete_=True)),
    discriminator=dict(_base_.discriminator, _delete_=True))
optim_wrapper = dict(_base_.adversarial_optim_wrapper, _delete_=True)
