# MS-STS VIS, Swin-L (patch 4, window 12, ImageNet-22k 384), YouTube-VIS
# 2019, 16 GPUs x 1 clip as SeqFormer's Swin-L recipe; the whole backbone
# trains at 0.1 x lr (schedule paramwise_cfg).
_base_ = './msts-vis_r50_8xb1-12e_youtubevis2019.py'
custom_imports = dict(imports=['mmvis_msts'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='SwinTransformer',
        pretrain_img_size=384,
        embed_dims=192,
        depths=[2, 2, 18, 2],
        num_heads=[6, 12, 24, 48],
        window_size=12,
        mlp_ratio=4,
        qkv_bias=True,
        qk_scale=None,
        drop_rate=0.,
        attn_drop_rate=0.,
        drop_path_rate=0.3,
        patch_norm=True,
        out_indices=(1, 2, 3),
        with_cp=False,
        convert_weights=True,
        init_cfg=None),
    neck=dict(in_channels=[384, 768, 1536]))

auto_scale_lr = dict(base_batch_size=16)
