# MS-STS VIS, ResNet-101, YouTube-VIS 2019.
_base_ = './msts-vis_r50_8xb1-12e_youtubevis2019.py'
custom_imports = dict(imports=['mmvis_msts'], allow_failed_imports=False)

model = dict(backbone=dict(depth=101))
