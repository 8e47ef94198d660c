# Ablation: all three additions, i.e. the main-job config itself.
_base_ = '../msts_vis/msts-vis_r18-tiny_1xb4-2k_synthetic.py'
