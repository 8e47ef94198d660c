# schedule_12e with the fg/bg discriminator (MS-STS VIS): two optimizers,
# one for the VIS model (everything but the discriminator, SeqFormer's
# recipe) and one for the discriminator, updated alternately by
# MSSTSVIS.train_step. Distributed runs need one DDP wrapper per sub-module
# (MMSeparateDistributedDataParallel), which VISRunner picks for models with
# a discriminator.
_base_ = './schedule_12e.py'

optim_wrapper = dict(
    _delete_=True,
    constructor='VISAdversarialOptimWrapperConstructor',
    model=dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr={{_base_.base_lr}}, weight_decay=1e-4),
        clip_grad=dict(max_norm=0.1, norm_type=2),
        paramwise_cfg={{_base_.paramwise_cfg}}),
    # not given by the paper: the model's optimizer settings
    discriminator=dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr={{_base_.base_lr}},
                       weight_decay=1e-4)))
