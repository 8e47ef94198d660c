# The input side of the tiny configs trained from scratch on the synthetic
# data set (the main job's MS-STS config and its Mask2Former-VIS anchor):
# both take these dicts from `_base_`, so they compare on the same backbone
# and padding by construction. Only the stages a model returns are its own
# (`out_indices`).

# ResNet-18 layout at half width: stages of 32/64/128/256 channels.
tiny_backbone_channels = [32 * 2**i for i in range(4)]
tiny_backbone = dict(
    type='ResNet',
    depth=18,
    base_channels=tiny_backbone_channels[0],
    # three 3x3 convs instead of the 7x7 and GroupNorm instead of BN:
    # together they lifted the class accuracy of the found tracks from
    # 0.55 to 0.73-0.84 (each alone: no clear gain; docs/main_job.md)
    deep_stem=True,
    num_stages=4,
    out_indices=(0, 1, 2, 3),
    frozen_stages=-1,
    norm_cfg=dict(type='GN', num_groups=8, requires_grad=True),
    norm_eval=False,
    style='pytorch',
    init_cfg=None)

tiny_data_preprocessor = dict(
    type='TrackDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_mask=True,
    # padded to a multiple of 16, not 32: an 80 px high batch stays 80 px
    # instead of 96 (about 10 % less time per iteration)
    pad_size_divisor=16)
