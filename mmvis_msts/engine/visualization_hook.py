"""Visualization hook that keeps the frames of different videos apart."""
import os.path as osp

import mmcv
from mmdet.engine.hooks import TrackVisualizationHook
from mmdet.registry import HOOKS
from mmdet.structures import DetDataSample
from mmengine.fileio import get
from mmengine.utils import mkdir_or_exist


@HOOKS.register_module()
class VISVisualizationHook(TrackVisualizationHook):
    """``TrackVisualizationHook`` for the YouTube-VIS / OVIS folder layout.

    mmdet 3.3 names the output folder of a frame after the grand-parent
    folder of its image (MOT layout ``<video>/img1/<frame>.jpg``). In the
    VIS layout ``JPEGImages/<video>/<frame>.jpg`` that is ``JPEGImages`` for
    every video, so the frames of all videos overwrite each other. Here the
    folder is the image's parent: ``<test_out_dir>/<video>/<frame>.jpg``.
    Arguments are those of ``TrackVisualizationHook``.
    """

    def visualize_single_image(self, img_data_sample: DetDataSample,
                               step: int) -> None:
        """Draw one frame (GT and prediction) and save or show it.

        Args:
            img_data_sample (DetDataSample): One frame with
                ``pred_track_instances`` and its ``img_path``.
            step (int): Index of the frame over the whole test run.
        """
        img_path = img_data_sample.img_path
        img = mmcv.imfrombytes(
            get(img_path, backend_args=self.backend_args), channel_order='rgb')
        out_file = None
        if self.test_out_dir is not None:
            video_name = osp.basename(osp.dirname(img_path))
            mkdir_or_exist(osp.join(self.test_out_dir, video_name))
            out_file = osp.join(self.test_out_dir, video_name,
                                osp.basename(img_path))
        self._visualizer.add_datasample(
            osp.basename(img_path) if self.show else 'test_img',
            img,
            data_sample=img_data_sample,
            show=self.show,
            wait_time=self.wait_time,
            pred_score_thr=self.score_thr,
            out_file=out_file,
            step=step)
