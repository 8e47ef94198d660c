"""YouTube-VIS / OVIS metric that runs under numpy 2 and keeps its files."""
import builtins
import os
import os.path as osp
import types
import zipfile
from collections import defaultdict
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import mmdet.evaluation.functional.ytviseval as ytviseval
import mmengine
import numpy as np
from mmdet.evaluation.metrics import YouTubeVISMetric
from mmdet.registry import METRICS
from mmdet.structures import TrackDataSample
from mmdet.structures.mask import encode_mask_results
from mmengine.logging import MMLogger


class _NumpyWithFloatAlias(types.ModuleType):
    """numpy as ``ytviseval`` was written against: numpy plus ``np.float``.

    numpy 1.24 removed the alias ``np.float`` (it always meant the builtin
    ``float``); ``YTVISeval.accumulate`` still casts with it. Every other
    attribute is numpy's own.
    """

    float = builtins.float

    def __getattr__(self, name: str):
        return getattr(np, name)


_NUMPY_WITH_FLOAT_ALIAS = _NumpyWithFloatAlias('numpy')


@contextmanager
def _ytviseval_with_float_alias() -> Iterator[None]:
    """Let mmdet's ``ytviseval`` module see ``np.float`` while in the block.

    Only that module's ``np`` name is swapped, and only for the duration of
    the block; global numpy is never touched.
    """
    module_numpy = ytviseval.np
    ytviseval.np = _NUMPY_WITH_FLOAT_ALIAS
    try:
        yield
    finally:
        ytviseval.np = module_numpy


def _frame_records(data_samples: Sequence) -> Tuple[List[dict], List[dict]]:
    """The per-frame prediction and GT records of one video.

    These are the records mmdet's ``YouTubeVISMetric`` formatters take.
    Masks kept as COCO RLE (``masks_rle``, the clip-wise mode of
    ``inference_video``) are used as they are, dense ``masks`` are encoded,
    so a long video's results are never decoded to pixels again.

    Args:
        data_samples (Sequence[DetDataSample]): The T frames of one video.

    Returns:
        tuple[list[dict], list[dict]]: T prediction records (``img_id``,
        ``masks`` (RLEs), ``scores``, ``labels``, ``instances_id``) and T GT
        records (``img_id``, ``video_id``, ``frame_id``, ``video_length``,
        ``width``, ``height``, ``anns``).
    """
    preds, gts = [], []
    for frame_id, frame in enumerate(data_samples):
        pred = frame.pred_track_instances
        if 'masks_rle' in pred:
            # copies: the formatter turns bytes counts into str in place
            masks = [dict(rle) for rle in pred.masks_rle]
        else:
            masks = encode_mask_results(pred.masks.detach().cpu().numpy())
        preds.append(
            dict(
                img_id=frame.img_id,
                masks=masks,
                scores=pred.scores.cpu().numpy(),
                labels=pred.labels.cpu().numpy(),
                instances_id=pred.instances_id.cpu().numpy()))
        height, width = frame.ori_shape[:2]
        gts.append(
            dict(
                img_id=frame.img_id,
                video_id=frame.video_id,
                frame_id=frame_id,
                video_length=len(data_samples),
                width=width,
                height=height,
                anns=frame.metainfo.get('instances', [])))
    return preds, gts


def _format_video(metric: YouTubeVISMetric,
                  data_samples: Sequence) -> Tuple[List[dict], List[dict]]:
    """One video's ``(predictions, ground truth)`` in YouTube-VIS format.

    Args:
        metric (YouTubeVISMetric): The metric whose video bookkeeping
            records the video.
        data_samples (Sequence[DetDataSample]): The T frames of one video.

    Returns:
        tuple[list[dict], list[dict]]: The predicted tracks (``video_id``,
        ``score``, ``category_id``, ``segmentations``) and the GT
        annotations.
    """
    preds, gts = _frame_records(data_samples)
    # the GT first: it records the video's frames, which the predictions'
    # formatter reads
    gt_results = metric._format_one_video_gts(gts)
    return metric._format_one_video_preds(preds), gt_results


def ytvis_results(track_sample: TrackDataSample) -> List[dict]:
    """YouTube-VIS result dicts of one video's predictions.

    The conversion is the one :class:`VISMetric` runs on every evaluated
    video, so a results json written from these dicts is what
    ``tools/test.py --out`` writes.

    Args:
        track_sample (TrackDataSample): The T frames of one video, each
            with ``pred_track_instances`` (``masks`` (N, H, W) or
            ``masks_rle``, ``scores``, ``labels``, ``instances_id``) and
            the metainfo ``img_id``, ``video_id`` and ``ori_shape``, as
            ``inference_video`` and ``model.test_step`` return them.

    Returns:
        list[dict]: One dict per track: ``video_id``, ``score`` (mean over
        its frames), ``category_id`` (1-based, majority vote) and
        ``segmentations`` (T RLEs, None where the track is absent).
    """
    predictions, _ = _format_video(
        YouTubeVISMetric(format_only=True), track_sample.video_data_samples)
    return predictions


@METRICS.register_module()
class VISMetric(YouTubeVISMetric):
    """Video instance segmentation AP for YouTube-VIS and OVIS.

    mmdet's ``YouTubeVISMetric`` (spatio-temporal mask IoU, official
    ``YTVISeval`` protocol) with these differences:

    - it takes masks kept as COCO RLE (``masks_rle``, as the clip-wise
      mode of ``inference_video`` streams them) as they are, besides dense
      ``masks``;
    - it runs under numpy >= 1.24 (mmdet's ``ytviseval`` uses the removed
      ``np.float``; see :func:`_ytviseval_with_float_alias`);
    - by default it reports the YouTube-VIS leaderboard numbers AP, AP50,
      AP75, AR1 and AR10 (keys ``youtube_vis/segm_mAP``, ``..._mAP_50``,
      ``..._mAP_75``, ``..._AR@1``, ``..._AR@10``);
    - when ``outfile_prefix`` is set it always writes
      ``<prefix>.json`` and ``<prefix>.submission_file.zip`` (the zip holds
      ``results.json`` at its root, as the YouTube-VIS and OVIS servers
      expect); both are swapped in only once complete, so a failed write
      never destroys results written before;
    - ``format_only=True`` requires ``outfile_prefix`` (mmdet would write
      into a temporary directory that is deleted straight away);
    - with ``format_only=False`` a video without ground truth raises an
      error that names it, instead of a silent -1 AP;
    - it can be evaluated more than once (mmdet's metric drops its image
      bookkeeping after the first ``evaluate`` and fails on the second
      validation round), and a round without any predicted track scores 0
      instead of crashing in ``YTVIS.loadRes``.

    Args:
        metric_items (Sequence[str], optional): Names of the statistics to
            report, any of ``mAP, mAP_50, mAP_75, mAP_s, mAP_m, mAP_l, AR@1,
            AR@10, AR@100, AR_s@100, AR_m@100, AR_l@100``. None or empty
            means ``('mAP', 'mAP_50', 'mAP_75', 'AR@1', 'AR@10')``, the
            default.
        outfile_prefix (str, optional): Path prefix of the result files,
            e.g. ``'work_dirs/x/results'``. Defaults to None (no files).
        format_only (bool): Only write the result files for a server, do
            not evaluate (for splits without annotations). Defaults to False.
        **kwargs: ``metric``, ``collect_device`` and ``prefix`` of
            ``YouTubeVISMetric``.

    Examples:
        >>> val_evaluator = dict(type='VISMetric')  # local AP with GT
        >>> test_evaluator = dict(
        ...     type='VISMetric', format_only=True,
        ...     outfile_prefix='work_dirs/msts/ytvis19_valid')
    """

    DEFAULT_METRIC_ITEMS = ('mAP', 'mAP_50', 'mAP_75', 'AR@1', 'AR@10')

    def __init__(self,
                 metric_items: Optional[Sequence[str]] = DEFAULT_METRIC_ITEMS,
                 outfile_prefix: Optional[str] = None,
                 format_only: bool = False,
                 **kwargs) -> None:
        if format_only and outfile_prefix is None:
            raise ValueError(
                f'{self.__class__.__name__}(format_only=True) needs an '
                '`outfile_prefix` to write the submission files to, e.g. '
                "outfile_prefix='work_dirs/<exp>/results'.")
        super().__init__(
            metric_items=list(metric_items or self.DEFAULT_METRIC_ITEMS),
            outfile_prefix=outfile_prefix,
            format_only=format_only,
            **kwargs)

    def process_video(self, data_samples: Sequence) -> None:
        """Format one video's predictions (and ground truth).

        Args:
            data_samples (Sequence[DetDataSample]): The T frames of one
                video, in frame order, each with ``pred_track_instances``
                (``masks`` or ``masks_rle``) and the metainfo ``img_id``,
                ``video_id``, ``ori_shape`` and (unless ``format_only``)
                ``instances``.
        """
        if not self.format_only:
            for frame in data_samples:
                if 'instances' not in frame:
                    raise ValueError(
                        f'{self.__class__.__name__}: frame '
                        f"{frame.get('img_path', frame.img_id)!r} of video "
                        f'{frame.video_id} carries no ground truth '
                        "('instances' metainfo). Evaluate a split with "
                        'annotations and keep "instances" in '
                        'PackTrackInputs.meta_keys, or set format_only=True '
                        'to only write the submission files.')
        self.results.append(_format_video(self, data_samples))

    def compute_metrics(self, results: List) -> Dict[str, float]:
        """Write the result files if asked to, then compute the APs.

        Args:
            results (list): ``(predictions, ground truth)`` of every video,
                gathered from all ranks.

        Returns:
            dict[str, float]: Metric name (without prefix) to value, empty
            when ``format_only``.
        """
        pred_results = self.format_preds(tuple(pred for pred, _ in results))
        if self.outfile_prefix is not None:
            self.save_pred_results(pred_results)
        if self.format_only:
            return dict()
        self._check_ground_truth(results)
        if not pred_results:
            # mmdet's YTVIS.loadRes indexes the first result; with ground
            # truth and no prediction every precision and recall is 0.
            MMLogger.get_current_instance().warning(
                f'{self.__class__.__name__}: no predicted track at all.')
            return {f'segm_{item}': 0.0 for item in self.metric_items}
        # The parent writes files only when format_only, handled above.
        with _ytviseval_with_float_alias():
            return super().compute_metrics(results)

    def _check_ground_truth(self, results: List) -> None:
        """Raise if no evaluated video has a ground-truth instance.

        A split without annotations (e.g. the official YouTube-VIS
        ``valid``) would otherwise evaluate to -1 everywhere. Videos without
        any instance next to annotated ones are legal (their detections are
        false positives) but reported, since they usually mean a broken
        annotation file.
        """
        video_ids = [video['id'] for video in self._vis_meta_info['videos']]
        annotated = {ann['video_id'] for _, gts in results for ann in gts}
        empty = [vid for vid in video_ids if vid not in annotated]
        if not annotated:
            raise ValueError(
                f'{self.__class__.__name__}: none of the {len(video_ids)} '
                f'evaluated videos has a ground-truth instance (video ids '
                f'{empty[:5]}{"..." if len(empty) > 5 else ""}). The split '
                'has no annotations: set format_only=True and an '
                'outfile_prefix to write the submission files for the '
                'evaluation server.')
        if empty:
            MMLogger.get_current_instance().warning(
                f'{self.__class__.__name__}: {len(empty)} video(s) have no '
                f'ground-truth instance, their predictions count as false '
                f'positives: video ids {empty[:10]}')

    def save_pred_results(self, pred_results: List) -> None:
        """Write ``<prefix>.json`` and ``<prefix>.submission_file.zip``.

        Args:
            pred_results (list[dict]): One dict per predicted track:
                ``video_id``, ``score``, ``category_id`` (1-based) and
                ``segmentations`` (one RLE or None per frame).
        """
        json_path = f'{self.outfile_prefix}.json'
        zip_path = f'{self.outfile_prefix}.submission_file.zip'
        mmengine.mkdir_or_exist(osp.dirname(osp.abspath(json_path)))
        # Write both files next to their targets first and swap them in only
        # once both are complete: a failure leaves the previous pair intact.
        json_tmp, zip_tmp = f'{json_path}.tmp', f'{zip_path}.tmp'
        try:
            mmengine.dump(pred_results, json_tmp, file_format='json')
            with zipfile.ZipFile(zip_tmp, 'w', zipfile.ZIP_DEFLATED) as zf:
                zf.write(json_tmp, 'results.json')
            os.replace(json_tmp, json_path)
            os.replace(zip_tmp, zip_path)
        finally:
            for tmp in (json_tmp, zip_tmp):
                if osp.exists(tmp):
                    os.remove(tmp)
        MMLogger.get_current_instance().info(
            f'{len(pred_results)} predicted tracks written to {json_path}; '
            f'submit {zip_path} (results.json inside) to the evaluation '
            'server.')

    def evaluate(self, size: int) -> dict:
        """Gather the results of all ranks and compute the metrics.

        Args:
            size (int): Number of videos in the dataset (unused by video
                metrics; kept for the mmengine interface).

        Returns:
            dict: ``<prefix>/segm_<item>`` to value; empty if format_only.
        """
        metrics = super().evaluate(size)
        # mmdet replaces the bookkeeping by a plain dict of the gathered
        # videos; start the next round from scratch.
        self._vis_meta_info = defaultdict(list)
        return metrics
