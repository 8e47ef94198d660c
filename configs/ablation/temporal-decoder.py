# Ablation: SeqFormer mode + the decoder temporal attention (§3b) only.
_base_ = './seqformer-mode.py'

model = dict(
    track_head=dict(decoder=dict(_base_.temporal_decoder, _delete_=True)))
