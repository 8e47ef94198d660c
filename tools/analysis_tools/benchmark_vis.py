"""Speed and peak memory of MS-STS VIS, SeqFormer and Mask2Former-VIS.

In one process, with one thread count and the same synthetic input for
every model, times

* ``infer<T>``: inference on a T-frame video, ``model.test_step`` (data
  preprocessing, forward, post-processing to masks at the input size), as
  the test loop runs it (``torch.no_grad``);
* ``train<T>``: one training step on a batch of ``--train-clips`` T-frame
  clips with ground truth (default 1),
  ``model.train_step`` with the config's own optimiser wrapper (built by
  mmengine's ``build_optim_wrapper``: AdamW, its gradient clipping and, for
  MS-STS, the discriminator's update and the generator term at full weight,
  ``--adv-iter``), i.e. forward, backward and optimiser step(s);

and, for each, the backbone alone on the same preprocessed frames
(forward; in training forward and backward), whose share of the whole shows
the ceiling of any ratio between models with the same backbone.

A model name ending in ``_bf16`` (``msts_bf16``, ``m2f_bf16``, ...) is that
model in bfloat16 autocast: inference inside ``torch.autocast``, training
with ``BF16OptimWrapper`` (``tools/train.py --bf16``); it is paired with the
float32 model. A name ending in ``_compile`` (``msts_compile``,
``msts_bf16_compile``) is that model with ``torch.compile`` applied in place
to the modules it calls as modules (``mmvis_msts.apis.compile_model``, with
``--compile-backend`` and ``--compile-mode``); it is paired with the model
without the suffix. Its first call compiles: the warm-up round, whose time is
kept in the json (``first_call_s``) and left out of the medians.

Models are interleaved (A B C A B C ...) over ``--repeats`` rounds after one
warm-up round, and medians are reported, so that a load spike on a shared
machine hits every model rather than deciding the result. The speed ratio of
a pair (``msts`` against ``m2f`` and against ``seqformer``) is the other
model's median time over MS-STS's (above 1: MS-STS is faster); its ceiling
is the other model's median over MS-STS's backbone median (what MS-STS
would reach if everything after its backbone took no time).

Memory:
    CPU: peak resident-set growth of this process during one call: Linux's
    VmHWM is reset through /proc/self/clear_refs after freeing cached heap
    (malloc_trim), and the peak minus the resident size before the call is
    reported (median over the repeats). Weights (and, in training, the
    optimiser state, created by the warm-up step) are allocated before the
    call and so excluded; activations, gradients, outputs and the
    temporary buffers of every op are included.
    CUDA: ``torch.cuda.max_memory_allocated()`` minus the memory allocated
    before the call.

Inputs: frames of two discs moving over noise, (1, T, 3, H, W) uint8 packed
with ``TrackDataSample`` metainfo (``img_shape = ori_shape = (H, W)``,
``frame_id``, ``video_length``, ...) and, for training, both discs as
ground truth in every frame (boxes, labels 0 and 1, instance ids, bitmap
masks). Weights are random (pretrained ``init_cfg`` dropped: no download);
speed and memory do not depend on them.

Results go to ``<out-dir>/benchmark_vis.json`` and ``benchmark_vis.md``,
rewritten atomically after every measurement, so an interrupted run loses
at most the call in flight: rerun the same command and it continues with
the rounds missing (after a new warm-up); other settings need another
``--out-dir`` or ``--restart``. ``--profile`` also writes, per model and
task, a torch.profiler table (operators sorted by self CPU time) to
``<out-dir>/profile/<model>_<task>.txt`` and the top rows to the json.

Examples:
    # the R-50 table of docs/benchmarks.md
    python tools/analysis_tools/benchmark_vis.py --preset r50 --threads 2 \\
        --tasks infer5 infer36 train5 --repeats 3 --profile
    # the tiny synthetic configs
    python tools/analysis_tools/benchmark_vis.py --preset tiny --size 80 128
    # eager against torch.compile (inductor), inference
    python tools/analysis_tools/benchmark_vis.py --preset tiny --size 80 128 \\
        --models msts msts_compile --tasks infer12
    # float32 against bfloat16 autocast, the main job's training batch
    python tools/analysis_tools/benchmark_vis.py --preset tiny --size 80 128 \\
        --models msts msts_bf16 --tasks train3 --train-clips 4 --threads 1
    # 1 torch thread against 2 (the main job's step; _t<N> overrides
    # --threads for one model)
    python tools/analysis_tools/benchmark_vis.py --preset tiny --size 80 128 \\
        --models msts_bf16 msts_bf16_t2 --tasks train3 --train-clips 4 \\
        --threads 1
    # the main job's step against issue 13's baseline (msts_issue13)
    python tools/analysis_tools/benchmark_vis.py --preset tiny --size 80 128 \\
        --models msts_bf16 msts_issue13 --tasks train3 --train-clips 4 \\
        --threads 1
    # ... and the candidate with stage 2 at stride 8 against both
    python tools/analysis_tools/benchmark_vis.py --preset tiny --size 80 128 \\
        --models msts_bf16 msts_round5_bf16 msts_issue13 --tasks train3 \\
        --train-clips 4 --threads 1
"""
import argparse
import ctypes
import datetime
import gc
import json
import logging
import os
import os.path as osp
import platform
import re
import resource
import statistics
import sys
import time
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import numpy as np
import torch

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, REPO_ROOT)

from mmvis_msts.apis import compile_model  # noqa: E402
from mmvis_msts.engine.atomic_files import write_text_atomic  # noqa: E402
from mmvis_msts.utils import set_wrapper_type  # noqa: E402
from mmvis_msts.utils.machine_info import cpu_model  # noqa: E402

# name -> config; ``mmdet::`` is a config shipped in the mmdet package
PRESETS = {
    'r50': {
        'msts':
        'configs/msts_vis/msts-vis_r50_8xb1-12e_youtubevis2019.py',
        'seqformer':
        'configs/seqformer/seqformer_r50_8xb1-12e_youtubevis2019.py',
        'm2f':
        'mmdet::mask2former_vis/mask2former_r50_8xb2-8e_'
        'youtubevis2019.py',
    },
    'tiny': {
        'msts':
        'configs/msts_vis/msts-vis_r18-tiny_1xb4-2k_synthetic.py',
        'm2f':
        'configs/benchmarks/mask2former-vis_r18-tiny_1xb4-2k_'
        'synthetic.py',
    },
}


class Variant(NamedTuple):
    """A model of a preset with cfg options; runs only when named in
    ``--models``."""
    base: str  # the preset's model it changes: 'msts'
    options: Dict  # cfg options on the base's config
    presets: Tuple[str, ...] = tuple(PRESETS)  # where the options apply


# the tiny config's discriminator until 2026-12-04: no mask-stride entry,
# generator weight 0.1, D's lr that of the model
D_BEFORE_ENTRY = {
    'model.discriminator.mask_stride_channels': 0,
    'model.loss_adv.loss_weight': 0.1,
    'optim_wrapper.discriminator.optimizer.lr': 1e-3
}
VARIANTS = {
    # the adversarial update before one backward pass became the default
    'msts_apart':
    Variant('msts', {'model.loss_adv.clip_apart': True}),
    # the main-job config as issue 13 measured it: the backbone before
    # round 4 (stages at strides 8/16/32, docs/main_job.md), the
    # discriminator before its mask-stride entry and the update after the
    # clip; the baseline of the main job's 1.5x target
    'msts_issue13':
    Variant(
        'msts', {
            'model.backbone.strides': (1, 2, 2, 2),
            'model.backbone.out_indices': (1, 2, 3),
            'model.neck.in_channels': [64, 128, 256],
            **D_BEFORE_ENTRY, 'model.loss_adv.clip_apart': True
        },
        presets=('tiny', )),
    # the main-job config with the discriminator before its mask-stride
    # entry (the default until 2026-12-04, docs/main_job.md)
    'msts_d8':
    Variant('msts', D_BEFORE_ENTRY, presets=('tiny', )),
    # the main-job config with stage 2 at stride 8 (stages at 4/8/8/16),
    # not adopted (docs/main_job.md, "Tried on 2026-12-03")
    'msts_round5':
    Variant(
        'msts', {'model.backbone.strides': (1, 2, 1, 2)}, presets=('tiny', )),
}
MODEL_NAMES = {
    'msts': 'MS-STS VIS',
    'seqformer': 'SeqFormer',
    'm2f': 'Mask2Former-VIS',
    'msts_apart': 'MS-STS VIS (clip_apart)',
    'msts_issue13': 'MS-STS VIS (config of issue 13)',
    'msts_round5': 'MS-STS VIS (stage 2 at stride 8)',
    'msts_d8': 'MS-STS VIS (D without the mask-stride entry)',
}
# (model, baseline): the ratio is the baseline's median over the model's;
# every ``<name>_bf16`` and ``<name>_compile`` is paired with ``<name>`` too
PAIRS = (('msts', 'm2f'), ('msts', 'seqformer'), ('msts', 'msts_apart'),
         ('msts', 'msts_issue13'), ('msts_bf16', 'msts_issue13'),
         ('msts_round5_bf16', 'msts_bf16'),
         ('msts_round5_bf16', 'msts_issue13'), ('msts_bf16', 'msts_d8_bf16'))
# model name suffixes, in this order: NAME_bf16 is NAME in bfloat16 autocast
# (inference in torch.autocast, training with BF16OptimWrapper), and
# NAME_compile is NAME under torch.compile (mmvis_msts.apis.compile_model)
BF16, COMPILE = '_bf16', '_compile'
# '_t<N>', the last suffix: the model runs with N torch threads instead of
# --threads (thread counts compared in one process, interleaved)
THREADS_RE = re.compile(r'_t([1-9]\d*)$')
TASK_RE = re.compile(r'^(infer|train)(\d+)$')
RESULT_STEM = 'benchmark_vis'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument(
        '--preset',
        choices=sorted(PRESETS),
        default='r50',
        help='which configs: the R-50 ones or the tiny synthetic ones')
    parser.add_argument(
        '--models',
        nargs='+',
        default=None,
        help='models of the preset to run (default: all of them; r50: '
        'msts seqformer m2f, tiny: msts m2f); msts_apart is the MS-STS '
        'config with AdversarialLoss(clip_apart=True), its adversarial '
        'update in two backward passes; NAME_bf16 is model NAME in '
        'bfloat16 autocast, NAME_compile (also NAME_bf16_compile) model '
        'NAME under torch.compile; a last suffix _t<N> (e.g. msts_bf16_t2) '
        'runs a model with N torch threads instead of --threads')
    parser.add_argument(
        '--tasks',
        nargs='+',
        default=['infer5', 'infer36', 'train5'],
        help='infer<T> (inference on a T-frame video) and train<T> (one '
        'training step on a T-frame clip)')
    parser.add_argument(
        '--size',
        type=int,
        nargs=2,
        default=[360, 640],
        metavar=('H', 'W'),
        help='frame size')
    parser.add_argument(
        '--train-clips',
        type=int,
        default=1,
        help='clips per training batch (the main job trains on 4)')
    parser.add_argument(
        '--repeats',
        type=int,
        default=3,
        help='timed rounds after the warm-up (median)')
    parser.add_argument(
        '--warmup', type=int, default=1, help='untimed rounds first')
    parser.add_argument(
        '--threads', type=int, default=2, help='torch CPU threads')
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument(
        '--adv-iter',
        type=int,
        default=None,
        help='training iteration the MS-STS step runs at, which sets the '
        'weight of its generator term (default: the first iteration after '
        'the config\'s warm-up and ramp that logs no gradient norms, the '
        'term at full weight; 0: the discriminator warm-up, no generator '
        'term)')
    parser.add_argument(
        '--compile-backend',
        default='inductor',
        help='torch.compile backend of the _compile models (e.g. inductor, '
        'aot_eager)')
    parser.add_argument(
        '--compile-mode',
        default=None,
        choices=['default', 'reduce-overhead', 'max-autotune'],
        help='torch.compile mode of the _compile models (default: torch\'s)')
    parser.add_argument(
        '--profile',
        action='store_true',
        help='also run each model and task once under torch.profiler and '
        'write its operator table')
    parser.add_argument(
        '--profile-rows',
        type=int,
        default=25,
        help='rows of each profiler table')
    parser.add_argument(
        '--out-dir',
        default='work_dirs/benchmark_vis',
        help='where the json, the markdown and the profiles go')
    parser.add_argument(
        '--restart',
        action='store_true',
        help='discard the results in --out-dir instead of continuing them')
    args = parser.parse_args(argv)
    presets = PRESETS[args.preset]
    args.models = args.models or list(presets)
    known = list(presets) + [
        name
        for name, variant in VARIANTS.items() if args.preset in variant.presets
    ]
    known += [name + BF16 for name in known]
    known += [name + COMPILE for name in known]
    unknown = [m for m in args.models if THREADS_RE.sub('', m) not in known]
    if unknown:
        parser.error(f'--models {" ".join(unknown)}: the {args.preset} '
                     f'preset has {", ".join(known)}')
    for task in args.tasks:
        match = TASK_RE.match(task)
        if match is None or int(match.group(2)) < 1:
            parser.error(f'--tasks {task}: expected infer<T> or train<T>, '
                         'T >= 1 frames (e.g. infer5, train5)')
    if args.repeats < 1 or args.warmup < 0 or args.train_clips < 1:
        parser.error('--repeats and --train-clips must be >= 1 and '
                     '--warmup >= 0')
    if args.warmup < 1 and any(m.endswith(COMPILE) for m in args.models):
        parser.error('a _compile model needs --warmup >= 1: its first call '
                     'compiles, and that time would be measured')
    return args


class ModelName(NamedTuple):
    """A ``--models`` name taken apart, e.g. ``'msts_bf16_compile'``."""
    plain: str  # the key of the preset or of VARIANTS: 'msts'
    bf16: bool  # '_bf16': bfloat16 autocast
    compiled: bool  # '_compile': under torch.compile (compile_model)
    threads: Optional[int]  # '_t<N>': N torch threads, else --threads


def parse_model_name(name: str) -> ModelName:
    """``'msts_bf16_compile_t2'`` -> ``ModelName('msts', True, True, 2)``."""
    match = THREADS_RE.search(name)
    threads = int(match.group(1)) if match else None
    name = THREADS_RE.sub('', name)
    compiled = name.endswith(COMPILE)
    if compiled:
        name = name[:-len(COMPILE)]
    bf16 = name.endswith(BF16)
    if bf16:
        name = name[:-len(BF16)]
    return ModelName(name, bf16, compiled, threads)


def model_label(name: str) -> str:
    """The table's name of a model, e.g. ``'MS-STS VIS (bf16, compiled)'``."""
    parsed = parse_model_name(name)
    extras = [
        text
        for text, on in (('bf16', parsed.bf16), ('compiled', parsed.compiled),
                         (f'{parsed.threads} threads', parsed.threads)) if on
    ]
    label = MODEL_NAMES[parsed.plain]
    return f'{label} ({", ".join(extras)})' if extras else label


def pairs_of(names: List[str]) -> List[Tuple[str, str]]:
    """The (model, baseline) pairs among ``names``: those of ``PAIRS``, and
    each suffixed name with the name without its last suffix."""
    pairs = list(PAIRS)
    for name in names:
        if THREADS_RE.search(name):
            pairs.append((name, THREADS_RE.sub('', name)))
            continue
        for suffix in (COMPILE, BF16):
            if name.endswith(suffix):
                pairs.append((name, name[:-len(suffix)]))
                break
    return [(m, b) for m, b in pairs if m in names and b in names]


def parse_task(task: str) -> Tuple[str, int]:
    """``'infer36'`` -> ``('infer', 36)``."""
    kind, frames = TASK_RE.match(task).groups()
    return kind, int(frames)


# -- models -------------------------------------------------------------------
def config_path(config: str) -> str:
    """A repository config, or ``mmdet::<path>`` in mmdet's package."""
    if config.startswith('mmdet::'):
        import mmdet
        return osp.join(
            osp.dirname(mmdet.__file__), '.mim', 'configs',
            config[len('mmdet::'):])
    return osp.join(REPO_ROOT, config)


def load_config(config: str):
    """The config with every pretrained ``init_cfg`` dropped (no network).

    Returns:
        mmengine.Config: The config.
    """
    from mmengine.config import Config
    cfg = Config.fromfile(config_path(config))
    cfg.model.init_cfg = None
    if cfg.model.get('backbone') is not None:
        cfg.model.backbone.init_cfg = None
    return cfg


class Bench:
    """One model of the comparison, built on first use.

    Attributes:
        name (str): The key of the preset or of ``VARIANTS``.
        cfg (mmengine.Config): Its config.
        model (nn.Module): The model, random weights, on ``device``.
        compiled (list[str]): Its parts under ``torch.compile`` (a
            ``_compile`` model), else empty.
        optim_wrapper: Built by the first training step.
    """

    def __init__(self,
                 name: str,
                 config: str,
                 device: str,
                 cfg_options: Optional[Dict] = None,
                 bf16: bool = False,
                 compile_options: Optional[Dict] = None) -> None:
        from mmdet.registry import MODELS
        from mmengine.registry import init_default_scope
        self.name, self.config, self.device = name, config, device
        self.bf16 = bf16
        self.cfg = load_config(config)
        self.cfg.merge_from_dict(cfg_options or {})
        init_default_scope(self.cfg.get('default_scope', 'mmdet'))
        torch.manual_seed(0)
        self.model = MODELS.build(self.cfg.model)
        self.model.init_weights()
        self.model.to(device)
        self.compiled = [] if compile_options is None else compile_model(
            self.model, **compile_options)
        self.optim_wrapper = None

    @property
    def params_m(self) -> float:
        """Parameters in millions (the discriminator's included)."""
        return sum(p.numel() for p in self.model.parameters()) / 1e6

    def autocast(self) -> torch.autocast:
        """bfloat16 autocast for a ``_bf16`` model, else a no-op."""
        return torch.autocast(
            self.device, dtype=torch.bfloat16, enabled=self.bf16)

    def infer(self, data: dict) -> object:
        """``test_step`` on one video, as the test loop runs it."""
        self.model.eval()
        with torch.no_grad(), self.autocast():
            return self.model.test_step(data)

    def train(self, data: dict, adv_iter: Optional[int]) -> object:
        """One ``train_step`` (forward, backward, optimiser steps)."""
        from mmengine.logging import MessageHub
        from mmengine.optim import build_optim_wrapper
        model = self.model
        model.train()
        if self.optim_wrapper is None:
            if self.bf16:
                set_wrapper_type(self.cfg, 'BF16OptimWrapper')
            self.optim_wrapper = build_optim_wrapper(model,
                                                     self.cfg.optim_wrapper)
        head = model.track_head
        if hasattr(head, 'num_frames'):
            # Mask2FormerTrackHead folds B*T back by its clip length
            head.num_frames = len(data['data_samples'][0])
        loss_adv = getattr(model, 'loss_adv', None)
        if adv_iter is None and loss_adv is not None:
            # the first iteration after the ramp that logs no gradient norms
            # (AdversarialLoss.grad_norm_interval): a typical step
            adv_iter = loss_adv.warmup_iters + loss_adv.ramp_iters
            if loss_adv.logs_grad_norms(adv_iter):
                adv_iter += 1
        # the iteration is put back after the step: callers in the same
        # process (tests) may rely on it
        hub = MessageHub.get_current_instance()
        unset = object()
        previous = hub.runtime_info.get('iter', unset)
        hub.update_info('iter', adv_iter or 0)
        try:
            return model.train_step(data, self.optim_wrapper)
        finally:
            if previous is unset:
                hub.runtime_info.pop('iter', None)
            else:
                hub.update_info('iter', previous)

    def backbone_inputs(self, data: dict, training: bool) -> torch.Tensor:
        """The preprocessed frames (T, 3, H_pad, W_pad) of ``data``."""
        with torch.no_grad():
            inputs = self.model.data_preprocessor(data, training)['inputs']
        return inputs.flatten(0, 1)

    def backbone(self, frames: torch.Tensor, training: bool) -> object:
        """The backbone alone: forward (training: and backward)."""
        backbone = self.model.backbone
        if not training:
            backbone.eval()
            with torch.no_grad(), self.autocast():
                return backbone(frames)
        backbone.train()  # norm_eval and frozen stages as configured
        with self.autocast():
            outs = backbone(frames)
        if any(o.requires_grad for o in outs):
            sum(o.mean() for o in outs).backward()
        for p in backbone.parameters():
            p.grad = None
        return outs


def compile_options_of(args: argparse.Namespace) -> Dict:
    """The ``torch.compile`` keyword arguments of the ``_compile`` models."""
    return dict(backend=args.compile_backend, mode=args.compile_mode)


# -- inputs -------------------------------------------------------------------
def synthetic_clip(num_frames: int,
                   height: int,
                   width: int,
                   with_gt: bool,
                   seed: int = 0) -> dict:
    """T frames of two discs moving over noise, packed as a batch of one.

    Args:
        num_frames (int): T.
        height (int): H.
        width (int): W.
        with_gt (bool): Attach ``gt_instances`` (both discs in every frame:
            ``bboxes`` (2, 4) xyxy, ``labels`` 0 and 1, ``instances_ids``
            1 and 2, ``masks`` BitmapMasks (2, H, W)).
        seed (int): Seed of the noise.

    Returns:
        dict: ``inputs`` [(T, 3, H, W) uint8] and ``data_samples``
        [TrackDataSample], what a data loader gives ``data_preprocessor``.
    """
    from mmdet.structures import DetDataSample, TrackDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    rng = np.random.default_rng(seed)
    ys, xs = np.ogrid[:height, :width]
    radius = max(min(height, width) // 8, 2)
    frames, samples = [], []
    for t in range(num_frames):
        img = rng.integers(0, 60, (3, height, width), dtype=np.uint8)
        masks = []
        for k, colour in enumerate(((0, 190, 250), (250, 90, 0))):
            cx = (width // 4 + 3 * t * (1 - 2 * k)) % width
            cy = height // 3 + k * height // 3
            mask = (ys - cy)**2 + (xs - cx)**2 < radius**2
            img[:, mask] = np.array(colour, np.uint8)[:, None]
            masks.append(mask.astype(np.uint8))
        sample = DetDataSample(
            metainfo=dict(
                img_id=t,
                video_id=0,
                frame_id=t,
                img_path=f'synthetic/{t:05d}.jpg',
                img_shape=(height, width),
                ori_shape=(height, width),
                scale_factor=(1.0, 1.0),
                video_length=num_frames,
                ori_video_length=num_frames))
        if with_gt:
            boxes = [[
                np.nonzero(m.any(0))[0].min(),
                np.nonzero(m.any(1))[0].min(),
                np.nonzero(m.any(0))[0].max() + 1,
                np.nonzero(m.any(1))[0].max() + 1
            ] for m in masks]
            sample.gt_instances = InstanceData(
                bboxes=torch.tensor(boxes, dtype=torch.float32),
                labels=torch.tensor([0, 1]),
                instances_ids=torch.tensor([1, 2]),
                masks=BitmapMasks(np.stack(masks), height, width))
        frames.append(torch.from_numpy(img))
        samples.append(sample)
    video = TrackDataSample()
    video.video_data_samples = samples
    return dict(inputs=[torch.stack(frames)], data_samples=[video])


# -- measurement --------------------------------------------------------------
class CpuPeakMemory:
    """Peak RSS growth while a call runs (see the module docstring)."""

    what = ('peak RSS growth during the call (VmHWM reset via '
            '/proc/self/clear_refs after malloc_trim, minus VmRSS before)')

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(None)
        self._reset()  # fails early where /proc/self/clear_refs is denied

    @staticmethod
    def _reset() -> None:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')

    @staticmethod
    def _status_kib(field: str) -> int:
        with open('/proc/self/status') as f:
            return int(re.search(rf'{field}:\s+(\d+)', f.read()).group(1))

    def before(self) -> int:
        gc.collect()
        self._libc.malloc_trim(0)
        rss = self._status_kib('VmRSS')
        self._reset()
        return rss

    def peak_mib(self, before: int) -> float:
        return (self._status_kib('VmHWM') - before) / 1024


class CudaPeakMemory:
    what = 'torch.cuda.max_memory_allocated() growth during the call'

    def before(self) -> int:
        gc.collect()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()

    def peak_mib(self, before: int) -> float:
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2**20


class NoMemory:
    what = 'not measured (/proc/self/clear_refs is not writable)'

    def before(self) -> int:
        return 0

    def peak_mib(self, before: int) -> None:
        return None


def memory_meter(device: str):
    if device == 'cuda':
        return CudaPeakMemory()
    try:
        return CpuPeakMemory()
    except OSError:
        return NoMemory()


def measure(call: Callable[[], object], meter,
            device: str) -> Tuple[float, Optional[float]]:
    """Wall seconds and peak memory growth (MiB) of one call."""
    before = meter.before()
    if device == 'cuda':
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = call()
    if device == 'cuda':
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = meter.peak_mib(before)
    del result
    return seconds, peak


def profile_table(call: Callable[[], object], device: str,
                  rows: int) -> Tuple[str, List[Dict]]:
    """One call under torch.profiler.

    Returns:
        tuple[str, list[dict]]: The operator table sorted by self CPU time
        (``rows`` rows), and its top rows as dicts (``op``, ``self_cpu_ms``,
        ``self_cpu_share``, ``calls``).
    """
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU]
    if device == 'cuda':
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        call()
        if device == 'cuda':
            torch.cuda.synchronize()
    averages = prof.key_averages()
    table = averages.table(sort_by='self_cpu_time_total', row_limit=rows)
    total = sum(e.self_cpu_time_total for e in averages) or 1.0
    top = sorted(averages, key=lambda e: -e.self_cpu_time_total)[:10]
    return table, [
        dict(
            op=e.key,
            self_cpu_ms=round(e.self_cpu_time_total / 1e3, 2),
            self_cpu_share=round(e.self_cpu_time_total / total, 4),
            calls=e.count) for e in top
    ]


# -- results ------------------------------------------------------------------
def settings_of(args: argparse.Namespace) -> Dict:
    """What makes two runs' figures comparable (resume only when equal)."""
    return dict(
        preset=args.preset,
        size=list(args.size),
        threads=args.threads,
        device=args.device,
        warmup=args.warmup,
        adv_iter=args.adv_iter,
        train_clips=args.train_clips,
        compile=compile_options_of(args))


def median(values: List[float]) -> Optional[float]:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarise(results: Dict) -> Dict:
    """Medians, frames/s, backbone shares and the pair ratios per task.

    A ratio is ``median(baseline seconds) / median(model seconds)``.
    """
    summary = {}
    for task, per_model in results['runs'].items():
        kind, frames = parse_task(task)
        rows = {}
        for name, run in per_model.items():
            sec = median(run['seconds'])
            if sec is None:
                continue
            backbone = median(run['backbone_seconds'])
            rows[name] = dict(
                median_s=round(sec, 4),
                frames_per_s=round(frames / sec, 3),
                peak_mib=None if median(run['peak_mib']) is None else round(
                    median(run['peak_mib']), 1),
                backbone_s=None if backbone is None else round(backbone, 4),
                backbone_share=None if backbone is None else round(
                    backbone / sec, 3),
                repeats=len(run['seconds']))
        ratios = {}
        for model, base in pairs_of(list(rows)):
            m_sec = median(per_model[model]['seconds'])
            b_sec = median(per_model[base]['seconds'])
            m_backbone = median(per_model[model]['backbone_seconds'])
            ratios[f'{model}/{base}'] = dict(
                speed_ratio=b_sec / m_sec,
                ceiling=None if not m_backbone else b_sec / m_backbone)
        summary[task] = dict(models=rows, ratios=ratios)
    return summary


def markdown(results: Dict) -> str:
    s, m = results['settings'], results['machine']
    h, w = s['size']
    lines = [
        f"Preset `{s['preset']}`, {h}x{w} frames, random weights, "
        f"{s['device']}, {s['threads']} torch threads; {m['cpu']}, "
        f"{m['cpus']} CPUs; torch {m['torch']}; started {m['started']}, "
        f"load average (1 min) {m['load_avg_start']} at the start.", '',
        'Time: median over the rounds (models interleaved, after '
        f"{s['warmup']} warm-up round); infer: `test_step` (preprocessing, "
        'forward, post-processing); train: `train_step` on a batch of '
        f"{s.get('train_clips', 1)} clip(s) (forward, backward, "
        'optimiser step(s); MS-STS: discriminator and model updates). '
        f"Memory: {results['memory']}. Backbone: the backbone alone on the "
        'same frames (train: forward and backward).', '',
        '| task | model | config | params (M) | median (s) | frames/s | '
        'peak memory (MiB) | backbone (s) | backbone share | rounds | '
        'load average |', '|---|---|---|---|---|---|---|---|---|---|---|'
    ]
    for task, summ in results['summary'].items():
        for name, row in summ['models'].items():
            info = results['models'][name]
            run = results['runs'][task][name]
            load = run['load_avg']
            load_txt = f'{min(load):.2f}-{max(load):.2f}' if load else ''
            share = row['backbone_share']
            lines.append(
                f"| {task} | {model_label(name)} | "
                f"`{osp.basename(info['config'])}` | {info['params_m']:.1f} | "
                f"{row['median_s']:.3f} | {row['frames_per_s']:.2f} | "
                f"{row['peak_mib'] if row['peak_mib'] is not None else '-'}"
                f" | {row['backbone_s'] if row['backbone_s'] else '-'} | "
                f"{'-' if share is None else f'{100 * share:.0f} %'} | "
                f"{row['repeats']} | {load_txt} |")
    lines += [
        '', 'Speed ratio: the baseline\'s median time over MS-STS\'s '
        '(above 1: MS-STS is faster); ceiling: the baseline\'s median over '
        'MS-STS\'s backbone median.', '',
        '| task | pair | speed ratio | ceiling |', '|---|---|---|---|'
    ]
    for task, summ in results['summary'].items():
        for pair, ratio in summ['ratios'].items():
            model, base = pair.split('/')
            ceiling = ratio['ceiling']
            lines.append(
                f'| {task} | {model_label(model)} vs {model_label(base)} | '
                f"{ratio['speed_ratio']:.2f}x | "
                f"{'-' if ceiling is None else f'{ceiling:.2f}x'} |")
    profiles = results.get('profiles', {})
    if profiles:
        lines += ['', 'Profiler, top operators by self CPU time:', '']
        for key, top in profiles.items():
            ops = ', '.join(f"`{r['op']}` {100 * r['self_cpu_share']:.0f} %"
                            for r in top[:5])
            lines.append(f'- {key}: {ops}')
    return '\n'.join(lines) + '\n'


def save(results: Dict, out_dir: str) -> None:
    """Write the json and the markdown, each atomically."""
    results['summary'] = summarise(results)
    stem = osp.join(out_dir, RESULT_STEM)
    write_text_atomic(stem + '.json', json.dumps(results, indent=2))
    write_text_atomic(stem + '.md', markdown(results))


def load_results(args: argparse.Namespace, meter) -> Dict:
    """The results so far in ``--out-dir``, or a new record."""
    path = osp.join(args.out_dir, RESULT_STEM + '.json')
    if osp.exists(path) and not args.restart:
        with open(path) as f:
            results = json.load(f)
        if results.get('settings') != settings_of(args):
            raise SystemExit(
                f'{path} holds a run with other settings '
                f"({results.get('settings')}, now {settings_of(args)}): "
                'pass --restart to discard it, or another --out-dir')
        return results
    return dict(
        settings=settings_of(args),
        machine=dict(
            cpu=cpu_model(),
            cpus=os.cpu_count(),
            torch=torch.__version__,
            python=platform.python_version(),
            started=datetime.datetime.now().astimezone().isoformat(
                timespec='seconds'),
            load_avg_start=round(os.getloadavg()[0], 2)),
        memory=meter.what,
        models={},
        runs={},
        profiles={})


# -- main ---------------------------------------------------------------------
class Benches(dict):
    """The models by name, each built when first needed (a finished run
    builds none)."""

    def __init__(self, args: argparse.Namespace, results: Dict) -> None:
        super().__init__()
        self.args, self.results = args, results

    def __missing__(self, name: str) -> Bench:
        parsed = parse_model_name(name)
        base, options, _ = VARIANTS.get(parsed.plain,
                                        Variant(parsed.plain, {}))
        config = PRESETS[self.args.preset][base]
        print(f'building {name}: {config} {options or ""}', flush=True)
        bench = self[name] = Bench(
            name, config, self.args.device, options, parsed.bf16,
            compile_options_of(self.args) if parsed.compiled else None)
        info = self.results['models'][name] = dict(
            config=config, params_m=round(bench.params_m, 2))
        if options:
            info['cfg_options'] = options
        if parsed.bf16:
            info['autocast'] = 'bfloat16'
        if parsed.compiled:
            info['compiled'] = dict(
                compile_options_of(self.args), parts=bench.compiled)
        return bench


def run_task(task: str, benches: Benches, results: Dict,
             args: argparse.Namespace, meter) -> None:
    """Warm-up and the missing rounds of one task, models interleaved."""
    kind, frames = parse_task(task)
    training = kind == 'train'
    runs = results['runs'].setdefault(task, {})
    for name in args.models:
        runs.setdefault(
            name,
            dict(seconds=[], peak_mib=[], backbone_seconds=[], load_avg=[]))
    todo = [n for n in args.models if len(runs[n]['seconds']) < args.repeats]
    if not todo and not args.profile:
        return
    h, w = args.size

    def data() -> dict:  # fresh: models write into their data samples
        if not training:
            return synthetic_clip(frames, h, w, with_gt=False)
        clips = [
            synthetic_clip(frames, h, w, with_gt=True, seed=i)
            for i in range(args.train_clips)
        ]
        return {key: sum((c[key] for c in clips), []) for key in clips[0]}

    def threads_of(name: str) -> int:
        return parse_model_name(name).threads or args.threads

    def call(name: str) -> Callable[[], object]:
        bench, threads = benches[name], threads_of(name)
        batch = data()
        torch.set_num_threads(threads)
        if training:
            return lambda: bench.train(batch, args.adv_iter)
        return lambda: bench.infer(batch)

    def backbone_call(name: str) -> Callable[[], object]:
        bench, threads = benches[name], threads_of(name)
        frames_in = bench.backbone_inputs(data(), training)
        torch.set_num_threads(threads)
        return lambda: bench.backbone(frames_in, training)

    for round_ in range(args.warmup):
        for name in todo:
            print(f'[{task}] warm-up {round_ + 1}: {name}', flush=True)
            start = time.perf_counter()
            call(name)()
            if round_ == 0:  # a _compile model compiles here
                runs[name]['first_call_s'] = round(time.perf_counter() - start,
                                                   3)
            backbone_call(name)()
    while todo:
        for name in todo:
            run = runs[name]
            seconds, peak = measure(call(name), meter, args.device)
            backbone_s, _ = measure(
                backbone_call(name), NoMemory(), args.device)
            run['seconds'].append(seconds)
            run['peak_mib'].append(peak)
            run['backbone_seconds'].append(backbone_s)
            run['load_avg'].append(round(os.getloadavg()[0], 2))
            print(
                f'[{task}] {name} round {len(run["seconds"])}: '
                f'{seconds:.3f} s, peak {peak} MiB, backbone '
                f'{backbone_s:.3f} s',
                flush=True)
            save(results, args.out_dir)
        todo = [n for n in todo if len(runs[n]['seconds']) < args.repeats]
    if args.profile:
        for name in args.models:
            key = f'{name}_{task}'
            if key in results['profiles']:
                continue
            table, top = profile_table(
                call(name), args.device, args.profile_rows)
            os.makedirs(osp.join(args.out_dir, 'profile'), exist_ok=True)
            write_text_atomic(
                osp.join(args.out_dir, 'profile', key + '.txt'),
                f'{model_label(name)}, {task}, {h}x{w}, '
                f'{args.threads} threads; sorted by self CPU time\n' + table)
            results['profiles'][key] = top
            print(f'[{task}] profiled {name}', flush=True)
            save(results, args.out_dir)


def main(argv: Optional[List[str]] = None) -> Dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    from mmdet.utils import register_all_modules
    from mmengine.logging import MMLogger

    import mmvis_msts  # noqa: F401  (registers the project's modules)
    register_all_modules(init_default_scope=True)
    # the optimiser constructors log every parameter's settings
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    os.makedirs(args.out_dir, exist_ok=True)
    meter = memory_meter(args.device)
    results = load_results(args, meter)
    benches = Benches(args, results)
    for task in args.tasks:
        run_task(task, benches, results, args, meter)
    results['machine']['load_avg_end'] = round(os.getloadavg()[0], 2)
    results['machine']['peak_rss_mib'] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    save(results, args.out_dir)
    print(markdown(results))
    return results


if __name__ == '__main__':
    main()
