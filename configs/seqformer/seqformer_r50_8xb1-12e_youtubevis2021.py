# SeqFormer, ResNet-50, YouTube-VIS 2021, 8 GPUs x 1 clip, 12 epochs.
custom_imports = dict(imports=['mmvis_msts'], allow_failed_imports=False)
_base_ = [
    '../_base_/models/seqformer_r50.py',
    '../_base_/datasets/youtube_vis_2021.py',
    '../_base_/schedules/schedule_12e.py',
    '../_base_/default_runtime.py',
]

default_hooks = dict(
    checkpoint=dict(by_epoch=True, interval=1, max_keep_ckpts=3))
load_from = None
