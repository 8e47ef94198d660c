# Ablation: SeqFormer mode + the fg/bg discriminator (§3c) only, with the
# main-job config's two optimisers.
_base_ = './seqformer-mode.py'

model = dict(discriminator=dict(_base_.discriminator, _delete_=True))
optim_wrapper = dict(_base_.adversarial_optim_wrapper, _delete_=True)
