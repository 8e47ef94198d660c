# YouTube-VIS 2019 + COCO pseudo-videos (SeqFormer's "jointcoco" training).
# COCO images of the classes YouTube-VIS shares with COCO, each turned into
# a 5-frame pseudo-video by ImageToPseudoVideo, are concatenated to the
# frame-level YouTube-VIS training set; validation is YouTube-VIS's.
#
# Class mapping: the COCO json carries COCO category ids and names, but the
# labels must be YouTube-VIS ones (COCO 'car' is 2019 'sedan', 'bicycle'
# and 'motorcycle' are 'motorbike', ...). Relabel the file once:
#   python tools/dataset_converters/coco_to_vis_classes.py \
#       data/coco/annotations/coco_keepfor_ytvis19.json \
#       data/coco/annotations/coco_ytvis2019.json --version 2019
# (coco_keepfor_ytvis19.json is SeqFormer's COCO subset; the full
# instances_train2017.json works too, it is filtered the same way). The
# relabelled file has the 40 YouTube-VIS categories with their ids, so
# CocoDataset with metainfo=dict(classes=ytvis_classes) yields YouTube-VIS
# labels.
_base_ = './youtube_vis_2019.py'

coco_root = 'data/coco/'
coco_ann_file = 'annotations/coco_ytvis2019.json'
coco_img_prefix = 'train2017/'
# Category order of YouTubeVISDataset (2019), i.e. label i = category i + 1.
ytvis_classes = ('person', 'giant_panda', 'lizard', 'parrot', 'skateboard',
                 'sedan', 'ape', 'dog', 'snake', 'monkey', 'hand', 'rabbit',
                 'duck', 'cat', 'cow', 'fish', 'train', 'horse', 'turtle',
                 'bear', 'motorbike', 'giraffe', 'leopard', 'fox', 'deer',
                 'owl', 'surfboard', 'airplane', 'truck', 'zebra', 'tiger',
                 'elephant', 'snowboard', 'boat', 'shark', 'mouse', 'frog',
                 'eagle', 'earless_seal', 'tennis_racket')

coco_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    # SeqFormer's image-to-sequence augmentation; shuffled frame order.
    dict(
        type='ImageToPseudoVideo',
        num_frames={{_base_.num_frames}},
        rotation=20.,
        translation=0.1,
        perspective=0.08,
        motion_blur_prob=0.25,
        motion_blur_kernel_sizes=(9, 11),
        brightness=40,
        hue_saturation=5,
        shuffle_frames=True),
    # The clip augmentation of the video branch minus PhotoMetricDistortion,
    # which SeqFormer leaves out for COCO.
    dict(
        type='TransformBroadcaster',
        share_random_params=True,
        transforms=[
            dict(type='RandomFlip', prob=0.5),
            {{_base_.clip_resize}},
        ]),
    dict(type='DropEmptyClip'),
    dict(type='PackTrackInputs'),
]
coco_dataset = dict(
    type='CocoDataset',
    data_root=coco_root,
    ann_file=coco_ann_file,
    data_prefix=dict(img=coco_img_prefix),
    metainfo=dict(classes=ytvis_classes),
    filter_cfg=dict(filter_empty_gt=True, min_size=32),
    pipeline=coco_pipeline,
    backend_args={{_base_.backend_args}})

train_dataloader = dict(
    # TrackAspectRatioBatchSampler reads video infos, which COCO items lack;
    # with one clip per GPU (SeqFormer R-50) no grouping is needed.
    batch_sampler=None,
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        # CocoDataset's metainfo also has a palette; the classes must match.
        ignore_keys=['palette'],
        datasets=[{{_base_.train_dataloader.dataset}}, coco_dataset]))
