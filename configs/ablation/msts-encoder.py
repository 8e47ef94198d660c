# Ablation: SeqFormer mode + the MS-STS encoder attention (§3a) only.
_base_ = './seqformer-mode.py'

model = dict(track_head=dict(encoder=dict(_base_.msts_encoder, _delete_=True)))
