# YouTube-VIS 2021: the 2019 recipe (youtube_vis_2019.py) on the 2021 files.
# Data layout (mmdet's converter run with --version 2021):
#   data/youtube_vis_2021/annotations/youtube_vis_2021_{train,valid}.json
#   data/youtube_vis_2021/{train,valid}/JPEGImages/<video>/<frame>.jpg
_base_ = './youtube_vis_2019.py'

data_root = 'data/youtube_vis_2021/'
dataset_version = data_root[-5:-1]

# Only the paths and the version change; the pipelines and loaders merge in
# from the base.
train_dataloader = dict(
    dataset=dict(
        dataset=dict(
            data_root=data_root,
            dataset_version=dataset_version,
            ann_file=f'annotations/youtube_vis_{dataset_version}_train.json')))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        dataset_version=dataset_version,
        ann_file=f'annotations/youtube_vis_{dataset_version}_valid.json'))
test_dataloader = val_dataloader

val_evaluator = dict(
    outfile_prefix=f'./work_dirs/vis_results/youtube_vis_{dataset_version}')
test_evaluator = val_evaluator
