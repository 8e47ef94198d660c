"""Turn one annotated image into a pseudo-video clip (COCO joint training)."""
from typing import Dict, List, Sequence, Tuple, Union

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS
from mmdet.structures.mask import BitmapMasks, PolygonMasks

# Keys this transform writes per frame; every other key is repeated T times.
_FRAME_KEYS = ('img', 'img_shape', 'gt_bboxes', 'gt_bboxes_labels', 'gt_masks',
               'gt_ignore_flags', 'gt_instances_ids', 'frame_id', 'video_id',
               'video_length', 'ori_video_length', 'key_frame_flags')
# Raw annotations of the source image; they do not describe warped frames.
_DROPPED_KEYS = ('instances', )
# Most channels cv2.remap takes at once (OpenCV 5 allows 128).
_CV_MAX_CHANNELS = 128


@TRANSFORMS.register_module()
class ImageToPseudoVideo(BaseTransform):
    """Make a T-frame pseudo-video from one image with instance masks.

    SeqFormer's recipe for training on COCO images alongside videos: the
    original image plus T - 1 copies, each with its own random

    1. colour change: one or both of a brightness shift (the same integer in
       ``[-brightness, brightness]`` added to every channel) and a hue and
       saturation shift (one integer in ``[-hue_saturation,
       hue_saturation]`` added to OpenCV's H (0..180, wrapping) and S);
    2. perspective warp: the four image corners move inwards by
       ``|N(0, perspective)|`` of the image size and that quadrilateral is
       stretched back to the full image (as imgaug's
       ``PerspectiveTransform(keep_size=True)``);
    3. affine warp about the image centre: rotation in
       ``[-rotation, rotation]`` degrees, scale in ``scale``, translation in
       ``[-translation, translation]`` of the width and height;
    4. motion blur with probability ``motion_blur_prob``: a line kernel of a
       size from ``motion_blur_kernel_sizes`` at a random angle (image only).

    The two warps form one homography per frame, applied with bilinear
    interpolation to the image and with nearest-neighbour sampling on the
    same sampling grid to every instance mask, so masks stay aligned with
    the pixels. Boxes are recomputed from the warped masks
    (``BitmapMasks.get_bboxes``). An instance whose mask has fewer than
    ``min_mask_area`` pixels in a frame (warped out of view) is absent from
    that frame only; instance ids (0..N-1, the annotation order) are the same
    in every frame, as for a real video. The frame order is shuffled by
    default, as SeqFormer does, so the untouched image is not always frame 0;
    with ``shuffle_frames=False`` it is frame 0. It is flagged as the key
    frame either way.

    Required keys: ``img`` (H, W, 3) uint8, ``gt_masks`` (BitmapMasks or
    PolygonMasks, N masks), ``gt_bboxes_labels`` (N,), ``gt_ignore_flags``
    (N,): the output of ``LoadImageFromFile`` + ``LoadAnnotations(with_bbox=
    True, with_mask=True)``.

    Output: every key becomes a list of T per-frame values, as after a
    frame-sampling transform and ``TransformBroadcaster(LoadImageFromFile,
    LoadTrackAnnotations)`` on a real video: ``img``, ``img_shape``,
    ``gt_bboxes`` ((N_t, 4) float32 xyxy arrays, as ``LoadTrackAnnotations``
    gives), ``gt_bboxes_labels``, ``gt_masks`` (BitmapMasks),
    ``gt_ignore_flags``, ``gt_instances_ids`` (int32),
    ``frame_id``, ``video_id`` (the image id), ``video_length`` and
    ``ori_video_length`` (T) and ``key_frame_flags``; other keys (paths,
    ``ori_shape``, ...) are repeated, and the raw ``instances`` list is
    dropped. The result feeds ``TransformBroadcaster`` and
    ``PackTrackInputs`` directly.

    Randomness comes from ``np.random`` (seeded by mmengine, like mmcv's
    transforms).

    Args:
        num_frames (int): T. Defaults to 5.
        rotation (float): Maximum absolute rotation in degrees. Defaults to
            20.
        translation (float): Maximum absolute shift as a fraction of the
            image width/height. Defaults to 0.1.
        scale (Sequence[float]): (min, max) zoom factor. SeqFormer keeps 1.
            Defaults to (1.0, 1.0).
        perspective (float): Standard deviation of the corner shifts, as a
            fraction of the image size. Defaults to 0.08.
        motion_blur_prob (float): Probability of motion blur per frame.
            Defaults to 0.25.
        motion_blur_kernel_sizes (Sequence[int]): Candidate kernel sizes.
            Defaults to (9, 11).
        brightness (int): Maximum absolute brightness shift. Defaults to 40.
        hue_saturation (int): Maximum absolute hue/saturation shift.
            Defaults to 5.
        shuffle_frames (bool): Shuffle the frame order. Defaults to True.
        min_mask_area (int): Pixels a warped mask needs to count as present
            in a frame. Defaults to 1.
    """

    def __init__(self,
                 num_frames: int = 5,
                 rotation: float = 20.,
                 translation: float = 0.1,
                 scale: Sequence[float] = (1.0, 1.0),
                 perspective: float = 0.08,
                 motion_blur_prob: float = 0.25,
                 motion_blur_kernel_sizes: Sequence[int] = (9, 11),
                 brightness: int = 40,
                 hue_saturation: int = 5,
                 shuffle_frames: bool = True,
                 min_mask_area: int = 1) -> None:
        if num_frames < 1:
            raise ValueError(f'num_frames must be >= 1, got {num_frames}')
        if len(scale) != 2 or not 0 < scale[0] <= scale[1]:
            raise ValueError(f'scale must be (min, max) > 0, got {scale}')
        if not 0 <= motion_blur_prob <= 1:
            raise ValueError('motion_blur_prob must be in [0, 1], got '
                             f'{motion_blur_prob}')
        if not motion_blur_kernel_sizes or any(
                k < 1 for k in motion_blur_kernel_sizes):
            raise ValueError('motion_blur_kernel_sizes must be positive, '
                             f'got {motion_blur_kernel_sizes}')
        if min_mask_area < 1:
            raise ValueError(
                f'min_mask_area must be >= 1, got {min_mask_area}')
        self.num_frames = num_frames
        self.rotation = rotation
        self.translation = translation
        self.scale = tuple(scale)
        self.perspective = perspective
        self.motion_blur_prob = motion_blur_prob
        self.motion_blur_kernel_sizes = tuple(motion_blur_kernel_sizes)
        self.brightness = brightness
        self.hue_saturation = hue_saturation
        self.shuffle_frames = shuffle_frames
        self.min_mask_area = min_mask_area

    def random_homography(self, height: int, width: int) -> np.ndarray:
        """Sample one frame's perspective-then-affine warp.

        Args:
            height (int): Image height H.
            width (int): Image width W.

        Returns:
            np.ndarray: (3, 3) float64 homography from source to warped
            pixel coordinates.
        """
        size = np.array([width, height], dtype=np.float64)
        corners = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float64)
        # Each corner moves towards the image centre.
        inward = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], np.float64)
        shifts = np.abs(np.random.normal(0, self.perspective, (4, 2)))
        quad = (corners + inward * shifts) * size
        perspective = cv2.getPerspectiveTransform(
            quad.astype(np.float32), (corners * size).astype(np.float32))

        angle = np.random.uniform(-self.rotation, self.rotation)
        zoom = np.random.uniform(*self.scale)
        shift = np.random.uniform(-self.translation, self.translation,
                                  2) * size
        centre = size / 2
        affine = np.eye(3)
        affine[:2] = cv2.getRotationMatrix2D(tuple(centre), angle, zoom)
        affine[:2, 2] += shift
        return affine @ perspective

    def random_colour(self, img: np.ndarray) -> np.ndarray:
        """Apply a random non-empty subset of brightness / hue-saturation.

        Args:
            img (np.ndarray): (H, W, 3) uint8 BGR image.

        Returns:
            np.ndarray: (H, W, 3) uint8 image.
        """
        num_ops = np.random.randint(1, 3)
        ops = np.random.permutation(2)[:num_ops]
        out = img.astype(np.int16)
        for op in ops:
            if op == 0:
                out = out + np.random.randint(-self.brightness,
                                              self.brightness + 1)
            else:
                delta = np.random.randint(-self.hue_saturation,
                                          self.hue_saturation + 1)
                hsv = cv2.cvtColor(
                    np.clip(out, 0, 255).astype(np.uint8),
                    cv2.COLOR_BGR2HSV).astype(np.int16)
                hsv[..., 0] = (hsv[..., 0] + delta) % 180
                hsv[..., 1] = np.clip(hsv[..., 1] + delta, 0, 255)
                out = cv2.cvtColor(hsv.astype(np.uint8),
                                   cv2.COLOR_HSV2BGR).astype(np.int16)
        return np.clip(out, 0, 255).astype(np.uint8)

    def random_motion_blur(self, img: np.ndarray) -> np.ndarray:
        """Blur along a random direction with probability motion_blur_prob.

        Args:
            img (np.ndarray): (H, W, 3) uint8 image.

        Returns:
            np.ndarray: (H, W, 3) uint8 image.
        """
        if np.random.rand() >= self.motion_blur_prob:
            return img
        ksize = int(np.random.choice(self.motion_blur_kernel_sizes))
        angle = np.deg2rad(np.random.uniform(0, 360))
        half = (ksize - 1) / 2
        kernel = np.zeros((ksize, ksize), np.float32)
        end = np.array([np.cos(angle), np.sin(angle)]) * half
        start_pt = tuple(int(round(v)) for v in half - end)
        end_pt = tuple(int(round(v)) for v in half + end)
        cv2.line(kernel, start_pt, end_pt, 1.0, thickness=1)
        kernel /= kernel.sum()
        return cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT)

    @staticmethod
    def warp(img: np.ndarray, masks: np.ndarray,
             homography: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Warp an image and its masks with one homography.

        Both use the same inverse-mapped sampling grid, so a mask pixel is
        set exactly where the image samples the inside of that mask.

        Args:
            img (np.ndarray): (H, W, 3) image.
            masks (np.ndarray): (N, H, W) uint8 masks.
            homography (np.ndarray): (3, 3) source-to-target homography.

        Returns:
            tuple[np.ndarray, np.ndarray]: the (H, W, 3) image (bilinear, zero
            outside the source) and the (N, H, W) masks (nearest).
        """
        height, width = img.shape[:2]
        inverse = np.linalg.inv(homography)
        # Target pixel (x, y) samples the source at inverse @ (x, y, 1);
        # (1, W) and (H, 1) broadcast to the (H, W) maps.
        xs = np.arange(width, dtype=np.float64)[None]
        ys = np.arange(height, dtype=np.float64)[:, None]
        source_x, source_y, source_w = (
            row[0] * xs + row[1] * ys + row[2] for row in inverse)
        map_x = (source_x / source_w).astype(np.float32)
        map_y = (source_y / source_w).astype(np.float32)

        def remap(array: np.ndarray, interpolation: int) -> np.ndarray:
            return cv2.remap(
                array,
                map_x,
                map_y,
                interpolation,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=0)

        warped_img = remap(img, cv2.INTER_LINEAR)
        warped_masks = np.zeros_like(masks)
        # cv2 takes channels last, at most _CV_MAX_CHANNELS at a time.
        for start in range(0, len(masks), _CV_MAX_CHANNELS):
            chunk = masks[start:start + _CV_MAX_CHANNELS]
            warped = remap(
                np.ascontiguousarray(chunk.transpose(1, 2, 0)),
                cv2.INTER_NEAREST)
            warped_masks[start:start + len(chunk)] = warped.reshape(
                height, width, -1).transpose(2, 0, 1)
        return warped_img, warped_masks

    @staticmethod
    def _mask_array(masks: Union[BitmapMasks, PolygonMasks], height: int,
                    width: int) -> np.ndarray:
        if isinstance(masks, PolygonMasks):
            masks = masks.to_bitmap()
        if not isinstance(masks, BitmapMasks):
            raise TypeError('gt_masks must be BitmapMasks or PolygonMasks, '
                            f'got {type(masks).__name__}')
        if len(masks) == 0:
            return np.zeros((0, height, width), np.uint8)
        if masks.masks.shape[1:] != (height, width):
            raise ValueError(f'gt_masks are {masks.masks.shape[1:]} but the '
                             f'image is {(height, width)}')
        return masks.masks.astype(np.uint8)

    def transform(self, results: dict) -> Dict[str, List]:
        """Build the pseudo-video.

        Args:
            results (dict): One loaded image with its annotations.

        Returns:
            dict[str, list]: Per-frame lists of T entries.
        """
        img = results['img']
        height, width = img.shape[:2]
        masks = self._mask_array(results['gt_masks'], height, width)
        labels = np.asarray(results['gt_bboxes_labels'], dtype=np.int64)
        ignore_flags = np.asarray(results['gt_ignore_flags'], dtype=bool)
        instance_ids = np.arange(len(masks), dtype=np.int32)

        frames = [(img, masks)]
        for _ in range(self.num_frames - 1):
            warped_img, warped_masks = self.warp(
                self.random_colour(img), masks,
                self.random_homography(height, width))
            frames.append((self.random_motion_blur(warped_img), warped_masks))
        order = (
            np.random.permutation(self.num_frames)
            if self.shuffle_frames else np.arange(self.num_frames))

        video = {key: [] for key in _FRAME_KEYS}
        for frame_id, source_index in enumerate(order):
            frame_img, frame_masks = frames[source_index]
            keep = np.count_nonzero(
                frame_masks.reshape(len(frame_masks), height * width),
                axis=1) >= self.min_mask_area
            bitmap = BitmapMasks(frame_masks[keep], height, width)
            video['img'].append(frame_img)
            video['img_shape'].append((height, width))
            video['gt_masks'].append(bitmap)
            video['gt_bboxes'].append(
                bitmap.get_bboxes(dst_type='hbox').numpy().astype(np.float32))
            video['gt_bboxes_labels'].append(labels[keep])
            video['gt_ignore_flags'].append(ignore_flags[keep])
            video['gt_instances_ids'].append(instance_ids[keep])
            video['frame_id'].append(frame_id)
            video['video_id'].append(results.get('img_id'))
            video['video_length'].append(self.num_frames)
            video['ori_video_length'].append(self.num_frames)
            video['key_frame_flags'].append(bool(source_index == 0))

        for key, value in results.items():
            if key not in _FRAME_KEYS and key not in _DROPPED_KEYS:
                video[key] = [value] * self.num_frames
        return video

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_frames={self.num_frames}, '
                f'rotation={self.rotation}, '
                f'translation={self.translation}, scale={self.scale}, '
                f'perspective={self.perspective}, '
                f'motion_blur_prob={self.motion_blur_prob}, '
                f'motion_blur_kernel_sizes={self.motion_blur_kernel_sizes}, '
                f'brightness={self.brightness}, '
                f'hue_saturation={self.hue_saturation}, '
                f'shuffle_frames={self.shuffle_frames}, '
                f'min_mask_area={self.min_mask_area})')
