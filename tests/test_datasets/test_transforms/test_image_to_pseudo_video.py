import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmdet.structures.mask import BitmapMasks, PolygonMasks, mask2bbox
from mmdet.utils import register_all_modules

from mmvis_msts.datasets.transforms import ImageToPseudoVideo

H, W = 72, 96


def loaded_image(
        boxes=((20, 16, 30, 24), (60, 40, 20, 18)),
        labels=(3, 7),
        ignore=(False, False)):
    """What LoadImageFromFile + LoadAnnotations give for a black image with
    white rectangles (x, y, w, h) as instances."""
    img = np.zeros((H, W, 3), np.uint8)
    masks = np.zeros((len(boxes), H, W), np.uint8)
    for i, (x, y, w, h) in enumerate(boxes):
        img[y:y + h, x:x + w] = 255
        masks[i, y:y + h, x:x + w] = 1
    return dict(
        img=img,
        img_shape=(H, W),
        ori_shape=(H, W),
        img_path='000000000001.jpg',
        img_id=1,
        instances=[dict() for _ in boxes],
        gt_bboxes=np.zeros((len(boxes), 4), np.float32),
        gt_bboxes_labels=np.array(labels, np.int64),
        gt_ignore_flags=np.array(ignore, bool),
        gt_masks=BitmapMasks(masks, H, W))


def test_output_is_a_video_of_per_frame_lists():
    np.random.seed(0)
    results = ImageToPseudoVideo(num_frames=5)(loaded_image())
    assert 'instances' not in results
    for key, value in results.items():
        assert isinstance(value, list) and len(value) == 5, key
    assert results['frame_id'] == [0, 1, 2, 3, 4]
    assert results['video_length'] == [5] * 5
    assert results['ori_video_length'] == [5] * 5
    assert results['video_id'] == [1] * 5
    assert results['img_path'] == ['000000000001.jpg'] * 5
    assert results['key_frame_flags'].count(True) == 1
    for t in range(5):
        assert results['img'][t].shape == (H, W, 3)
        assert results['img'][t].dtype == np.uint8
        assert results['img_shape'][t] == (H, W)
        assert isinstance(results['gt_masks'][t], BitmapMasks)
        assert results['gt_bboxes'][t].dtype == np.float32
        assert results['gt_instances_ids'][t].dtype == np.int32


def test_boxes_are_the_boxes_of_the_warped_masks():
    np.random.seed(1)
    results = ImageToPseudoVideo(num_frames=5)(loaded_image())
    for masks, boxes in zip(results['gt_masks'], results['gt_bboxes']):
        expected = mask2bbox(torch.from_numpy(masks.masks)).numpy()
        np.testing.assert_array_equal(boxes, expected)
        assert boxes.shape == (len(masks), 4)


def test_masks_are_warped_with_the_image():
    np.random.seed(2)
    transform = ImageToPseudoVideo(num_frames=5, motion_blur_prob=0.)
    results = transform(loaded_image())
    warped_frames = 0
    for img, masks in zip(results['img'], results['gt_masks']):
        union = masks.masks.any(0)
        # Colour shifts stay within +-40 (+ a small hue/saturation change),
        # so the white instances stay the bright pixels.
        bright = img.min(axis=2) > 127
        mismatch = np.count_nonzero(union != bright)
        assert mismatch <= 0.03 * np.count_nonzero(union), mismatch
        warped_frames += not np.array_equal(
            union,
            loaded_image()['gt_masks'].masks.any(0))
    assert warped_frames == 4


def test_untouched_frame_comes_first_without_shuffling():
    np.random.seed(3)
    source = loaded_image()
    results = ImageToPseudoVideo(shuffle_frames=False)(loaded_image())
    assert results['key_frame_flags'] == [True, False, False, False, False]
    np.testing.assert_array_equal(results['img'][0], source['img'])
    np.testing.assert_array_equal(results['gt_masks'][0].masks,
                                  source['gt_masks'].masks)
    np.testing.assert_array_equal(results['gt_bboxes'][0],
                                  [[20, 16, 50, 40], [60, 40, 80, 58]])


def test_frames_are_shuffled_by_default():
    np.random.seed(4)
    transform = ImageToPseudoVideo()
    keys = {
        transform(loaded_image())['key_frame_flags'].index(True)
        for _ in range(20)
    }
    assert len(keys) > 1


def test_instance_ids_persist_and_vanished_instances_are_dropped():
    # A 3x3 instance in the corner is shifted out of view by large moves.
    source = loaded_image(
        boxes=((30, 20, 30, 30), (0, 0, 3, 3)),
        labels=(4, 9),
        ignore=(False, True))
    transform = ImageToPseudoVideo(
        num_frames=8, translation=0.4, rotation=0., perspective=0.)
    np.random.seed(5)
    results = transform(source)
    present = []
    for t in range(8):
        ids = results['gt_instances_ids'][t]
        present.append(set(ids.tolist()))
        np.testing.assert_array_equal(results['gt_bboxes_labels'][t],
                                      np.array([4, 9])[ids])
        np.testing.assert_array_equal(results['gt_ignore_flags'][t],
                                      np.array([False, True])[ids])
        assert len(results['gt_masks'][t]) == len(ids)
        assert len(results['gt_bboxes'][t]) == len(ids)
        for mask in results['gt_masks'][t].masks:
            assert mask.any()
    # The big instance never leaves; the corner one leaves some frames.
    assert all(0 in ids for ids in present)
    assert any(1 not in ids for ids in present)
    assert any(1 in ids for ids in present)


def test_polygon_masks_are_accepted():
    np.random.seed(6)
    source = loaded_image(
        boxes=((10, 10, 20, 20), ), labels=(1, ), ignore=(False, ))
    source['gt_masks'] = PolygonMasks(
        [[np.array([10., 10., 30., 10., 30., 30., 10., 30.])]], H, W)
    # mmdet's own rasterisation of the polygon
    expected = source['gt_masks'].to_ndarray()
    results = ImageToPseudoVideo(shuffle_frames=False)(source)
    # the first frame is the untouched image: its mask is the polygon's
    np.testing.assert_array_equal(results['gt_masks'][0].masks, expected)
    assert isinstance(results['gt_masks'][3], BitmapMasks)


def test_image_without_instances():
    np.random.seed(7)
    source = loaded_image(boxes=(), labels=(), ignore=())
    results = ImageToPseudoVideo(num_frames=3)(source)
    for t in range(3):
        assert results['gt_bboxes'][t].shape == (0, 4)
        assert results['gt_instances_ids'][t].shape == (0, )


def test_pseudo_video_feeds_the_video_pipeline():
    register_all_modules()
    np.random.seed(8)
    pipeline = Compose([
        dict(type='ImageToPseudoVideo', num_frames=5),
        dict(
            type='TransformBroadcaster',
            share_random_params=True,
            transforms=[
                dict(type='RandomFlip', prob=0.5),
                dict(type='Resize', scale=(200, 100), keep_ratio=True),
            ]),
        dict(type='PackTrackInputs'),
    ])
    packed = pipeline(loaded_image())
    assert packed['inputs'].shape == (5, 3, 100, 133)
    frames = packed['data_samples'].video_data_samples
    assert [frame.frame_id for frame in frames] == [0, 1, 2, 3, 4]
    assert len(packed['data_samples'].key_frames_inds) == 1
    for frame in frames:
        ids = frame.gt_instances.instances_ids.tolist()
        assert set(ids) <= {0, 1}
        assert frame.gt_instances.masks.masks.shape[1:] == (100, 133)


@pytest.mark.parametrize('kwargs', [
    dict(num_frames=0),
    dict(scale=(0, 1)),
    dict(scale=(1.2, 1.0)),
    dict(motion_blur_prob=1.5),
    dict(motion_blur_kernel_sizes=()),
    dict(min_mask_area=0),
])
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        ImageToPseudoVideo(**kwargs)


def test_mask_size_mismatch_is_reported():
    source = loaded_image()
    source['gt_masks'] = BitmapMasks(
        np.zeros((2, H + 1, W), np.uint8), H + 1, W)
    with pytest.raises(ValueError, match='gt_masks'):
        ImageToPseudoVideo()(source)


def test_warp_handles_more_masks_than_cv2_channels():
    rng = np.random.RandomState(9)
    masks = (rng.rand(130, H, W) > 0.5).astype(np.uint8)
    img = np.zeros((H, W, 3), np.uint8)
    np.random.seed(9)
    homography = ImageToPseudoVideo().random_homography(H, W)
    _, warped = ImageToPseudoVideo.warp(img, masks, homography)
    _, warped_tail = ImageToPseudoVideo.warp(img, masks[127:], homography)
    assert warped.shape == masks.shape
    np.testing.assert_array_equal(warped[127:], warped_tail)
    assert not np.array_equal(warped, masks)
