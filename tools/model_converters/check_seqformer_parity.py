"""Compare the converted model with outputs dumped from the public SeqFormer.

    python tools/model_converters/check_seqformer_parity.py \
        REFERENCE.pth SEQFORMER.pth [--config CONFIG] [--tol 1e-4]

``SEQFORMER.pth`` is the SeqFormer checkpoint that produced the reference
(converted here with ``seqformer_to_mmvis.py``). ``REFERENCE.pth`` is a dict
of tensors written by the public code for one clip of T frames (see
``configs/seqformer/README.md`` for how to dump it):

* ``inputs`` (T, 3, H, W): the normalised, zero-padded frames fed to it;
* ``img_shape`` (2,): the unpadded (h, w) of every frame;
* ``pred_logits`` (Q, K+2): last-layer class logits (``pred_logits``);
* ``pred_boxes`` (T, Q, 4): last-layer per-frame boxes, normalised cxcywh;
* ``pred_masks`` (Q, T, H/4, W/4): last-layer mask logits of every query;
* ``memory`` (T, S, C), optional: the encoder output.

The project's model (eval mode, the reference's dtype) runs backbone -> neck
-> head on the same tensor; the script prints the max abs difference of each
output and exits with status 1 if one exceeds ``--tol``.
"""
import argparse
import importlib.util
import os.path as osp
import sys
from typing import Dict, Tuple

import torch
from torch import Tensor

from mmvis_msts.utils import load_checkpoint_weights_only


def _load_converter():
    """The sibling ``seqformer_to_mmvis.py`` (tools/ is not a package)."""
    path = osp.join(
        osp.dirname(osp.abspath(__file__)), 'seqformer_to_mmvis.py')
    spec = importlib.util.spec_from_file_location('seqformer_to_mmvis', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


conv = _load_converter()
ConversionError = conv.ConversionError

REFERENCE_KEYS = ('inputs', 'img_shape', 'pred_logits', 'pred_boxes',
                  'pred_masks')


def load_reference(path: str) -> Dict[str, Tensor]:
    """Read and check a dumped reference (weights-only).

    Args:
        path (str): The ``REFERENCE.pth`` file.

    Returns:
        dict[str, Tensor]: Its tensors.
    """
    reference = load_checkpoint_weights_only(path)
    missing = [k for k in REFERENCE_KEYS if k not in reference]
    if missing:
        raise ConversionError(f'{path} lacks {", ".join(missing)}')
    inputs = reference['inputs']
    if inputs.dim() != 4 or inputs.size(1) != 3:
        raise ConversionError(f'{path}: inputs must be (T, 3, H, W), got '
                              f'{tuple(inputs.shape)}')
    return reference


def run_project_model(model: torch.nn.Module, inputs: Tensor,
                      img_shape) -> Dict[str, Tensor]:
    """Raw last-layer outputs of the project's model for one clip.

    Args:
        model (nn.Module): ``MSSTSVIS`` in eval mode.
        inputs (Tensor): (T, 3, H, W) normalised, padded frames.
        img_shape (tuple[int, int]): Unpadded (h, w) of the frames.

    Returns:
        dict[str, Tensor]: ``cls_scores`` (Q, K), ``bbox_preds`` (T, Q, 4),
        ``mask_logits`` (Q, T, H/4, W/4) and ``memory`` (T, S, C).
    """
    from mmdet.structures import DetDataSample, TrackDataSample

    num_frames, _, pad_h, pad_w = inputs.shape
    sample = TrackDataSample()
    sample.video_data_samples = [
        DetDataSample(
            metainfo=dict(
                img_shape=tuple(img_shape),
                ori_shape=tuple(img_shape),
                batch_input_shape=(pad_h, pad_w),
                frame_id=t)) for t in range(num_frames)
    ]
    head = model.track_head
    with torch.no_grad():
        outs = head(model.extract_feat(inputs[None]), [sample])
        num_queries = outs.cls_scores.size(2)
        query_inds = torch.arange(num_queries)
        mask_logits = head.mask_logits(outs, -1, torch.zeros_like(query_inds),
                                       query_inds)
    memory = torch.cat(
        [m.flatten(2).transpose(1, 2) for m in outs.mlvl_memory], 1)
    return dict(
        cls_scores=outs.cls_scores[-1, 0],
        bbox_preds=outs.bbox_preds[-1, 0],
        mask_logits=mask_logits,
        memory=memory)


# compared output -> (reference key, our key)
OUTPUTS = dict(
    class_logits=('pred_logits', 'cls_scores'),
    boxes=('pred_boxes', 'bbox_preds'),
    mask_logits=('pred_masks', 'mask_logits'),
    encoder_memory=('memory', 'memory'))


def compare(reference: Dict[str, Tensor],
            ours: Dict[str, Tensor]) -> Dict[str, Tuple[float, float]]:
    """Max abs differences, SeqFormer logit k against our label k - 1.

    Args:
        reference (dict[str, Tensor]): Output of :func:`load_reference`.
        ours (dict[str, Tensor]): Output of :func:`run_project_model`.

    Returns:
        dict[str, tuple[float, float]]: Per output in :data:`OUTPUTS` that
        the reference holds: (max abs difference, max abs reference value).
    """
    num_classes = ours['cls_scores'].size(-1)
    results = {}
    for name, (ref_key, our_key) in OUTPUTS.items():
        if ref_key not in reference:
            continue
        ref = reference[ref_key]
        if ref_key == 'pred_logits':
            ref = ref[:, 1:num_classes + 1]
        out = ours[our_key]
        if ref.shape != out.shape:
            raise ConversionError(f'{name}: reference shape '
                                  f'{tuple(ref.shape)} vs ours '
                                  f'{tuple(out.shape)}')
        results[name] = ((ref.double() - out.double()).abs().max().item(),
                         ref.abs().max().item())
    return results


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Check the converted model against SeqFormer outputs')
    parser.add_argument('reference', help='dumped SeqFormer outputs (.pth)')
    parser.add_argument('checkpoint', help='the SeqFormer checkpoint (.pth)')
    parser.add_argument('--config', default=conv.DEFAULT_CONFIG)
    parser.add_argument(
        '--tol', type=float, default=1e-4, help='max abs difference allowed')
    parser.add_argument(
        '--dtype',
        choices=('float32', 'float64'),
        default=None,
        help="dtype of the model and inputs (default: the reference's); "
        'float32 against a float64 reference measures float32 rounding')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    try:
        reference = load_reference(args.reference)
        model = conv.build_model(args.config)
        converted, _ = conv.convert_for_model(
            conv.load_seqformer_state_dict(args.checkpoint), model)
        inputs = reference['inputs']
        if args.dtype is not None:
            inputs = inputs.to(getattr(torch, args.dtype))
        # cast first: loading casts the tensors to the parameters' dtype
        model = model.to(inputs.dtype).eval()
        model.load_state_dict(converted, strict=True)
        ours = run_project_model(model, inputs,
                                 reference['img_shape'].tolist())
        diffs = compare(reference, ours)
    except ConversionError as err:
        raise SystemExit(f'error: {err}')
    t, _, h, w = inputs.shape
    print(f'clip: T={t}, input {h}x{w}, valid '
          f'{tuple(reference["img_shape"].tolist())}; model '
          f'{inputs.dtype}, reference {reference["inputs"].dtype}')
    for name, (diff, scale) in diffs.items():
        status = 'ok' if diff <= args.tol else 'FAIL'
        print(f'{name:15s} max |diff| {diff:.3e}  (max |ref| {scale:.3g})  '
              f'{status}')
    if any(diff > args.tol for diff, _ in diffs.values()):
        sys.exit(1)


if __name__ == '__main__':
    main()
