import numpy as np
from mmcv.transforms import Compose
from mmdet.utils import register_all_modules

from mmvis_msts.datasets.transforms import SharedRandomChoice


def test_one_branch_for_every_frame_of_a_clip():
    register_all_modules()
    pipeline = Compose([
        dict(
            type='TransformBroadcaster',
            share_random_params=True,
            transforms=[
                dict(
                    type='SharedRandomChoice',
                    transforms=[
                        [dict(type='Resize', scale=(20, 10))],
                        [dict(type='Resize', scale=(40, 30))],
                    ])
            ])
    ])
    np.random.seed(0)
    shapes = set()
    for _ in range(20):
        clip = pipeline(
            dict(
                img=[np.zeros((16, 16, 3), np.uint8)] * 4,
                img_shape=[(16, 16)] * 4))
        frame_shapes = {img.shape for img in clip['img']}
        assert len(frame_shapes) == 1
        shapes |= frame_shapes
    assert shapes == {(10, 20, 3), (30, 40, 3)}


def test_own_list_of_random_methods():
    assert SharedRandomChoice._methods_with_randomness == [
        'random_pipeline_index'
    ]
