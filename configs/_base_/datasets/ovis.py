# OVIS (Occluded VIS, 25 classes) with the YouTube-VIS recipe
# (youtube_vis_2019.py). Convert the official raw annotations first:
#   python tools/dataset_converters/ytvis_raw_to_cocovid.py \
#       data/ovis/annotations_train.json data/ovis/annotations/ovis_train.json
#   (and the same for annotations_valid.json -> ovis_valid.json)
# Data layout: data/ovis/{train,valid}/<video>/<frame>.jpg (the official
# archives; file_name in the json already starts with <video>/).
_base_ = './youtube_vis_2019.py'

dataset_type = 'OVISDataset'
data_root = 'data/ovis/'
dataset_version = 'ovis'

train_dataloader = dict(
    dataset=dict(
        dataset=dict(
            type=dataset_type,
            data_root=data_root,
            dataset_version=dataset_version,
            ann_file='annotations/ovis_train.json',
            data_prefix=dict(img_path='train/'))))
# OVIS valid has no public ground truth either: submission file only.
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        dataset_version=dataset_version,
        ann_file='annotations/ovis_valid.json',
        data_prefix=dict(img_path='valid/')))
test_dataloader = val_dataloader

val_evaluator = dict(outfile_prefix='./work_dirs/vis_results/ovis')
test_evaluator = val_evaluator
