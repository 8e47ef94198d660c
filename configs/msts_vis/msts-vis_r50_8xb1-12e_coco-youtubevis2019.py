# MS-STS VIS, ResNet-50, joint training on YouTube-VIS 2019 and COCO images
# turned into 5-frame pseudo-videos (SeqFormer's recipe behind its and the
# paper's main R-50 results), 8 GPUs x 1 clip, 12 epochs.
custom_imports = dict(imports=['mmvis_msts'], allow_failed_imports=False)
_base_ = [
    '../_base_/models/msts-vis_r50.py',
    '../_base_/datasets/coco_joint_youtube_vis_2019.py',
    '../_base_/schedules/schedule_12e_adversarial.py',
    '../_base_/default_runtime.py',
]

default_hooks = dict(
    checkpoint=dict(by_epoch=True, interval=1, max_keep_ckpts=3))
load_from = None
