"""Benchmark mmvis-msts' multi-scale deformable attention against mmcv's.

Times forward and forward+backward and measures their peak memory at the
shapes of an MS-STS / SeqFormer clip (5 frames of a 360x640 input, levels
45x80, 23x40, 12x20, 6x10; 8 heads, 4 points, 256 channels):

* ``encoder``: every one of the 4820 tokens of a frame queries its frame;
* ``decoder``: 300 queries per frame query the same value maps.

On CPU the baseline is mmcv's pure-PyTorch path
(``multi_scale_deformable_attn_pytorch``, what mmcv runs on CPU); on CUDA it is
mmcv's CUDA op. Where mmcv.ops does not import (mmcv-lite, or mmcv built
without ops), the baseline is this package's pure-PyTorch reference
(``ms_deform_attn_pytorch``, the same grid_sample algorithm as mmcv's PyTorch
path). Both run on the same inputs, and their outputs and gradients are
compared before anything is timed.

Memory:
    CPU: peak resident-set growth of this process while the op runs: Linux's
    VmHWM is reset through /proc/self/clear_refs after freeing cached heap
    (malloc_trim), and the peak minus the resident size before the call is
    reported. Inputs are excluded; outputs and gradients are included.
    CUDA: torch.cuda.max_memory_allocated() minus the memory allocated
    before the call (same inclusions).

Example:
    python tools/analysis_tools/benchmark_ops.py --device cpu --threads 2 \
        --out work_dirs/benchmark_ops_cpu.md
"""
import argparse
import ctypes
import gc
import importlib
import platform
import re
import statistics
import sys
import time
from typing import Callable, Dict, List, Tuple

import torch
from torch import Tensor

LEVELS = ((45, 80), (23, 40), (12, 20), (6, 10))
SHAPES = {
    # name: (batch = frames, queries per frame)
    'encoder': (5, sum(h * w for h, w in LEVELS)),
    'decoder': (5, 300),
}
NUM_HEADS, NUM_POINTS, EMBED_DIMS = 8, 4, 256
# max |ours - baseline| / max |baseline| allowed per output and gradient
# (float32)
MATCH_TOL = 1e-4


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument(
        '--threads',
        type=int,
        default=None,
        help='torch CPU threads (default: torch\'s choice)')
    parser.add_argument(
        '--repeat', type=int, default=3, help='timed runs per case (median)')
    parser.add_argument(
        '--shapes', nargs='+', default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument('--out', help='also write the markdown report here')
    return parser.parse_args()


# -- implementations ----------------------------------------------------------
OpFn = Callable[[Tensor, Tensor, Tensor, Tensor, Tensor], Tensor]


def load_impls(device: str) -> Tuple[Dict[str, OpFn], List[str]]:
    """The ops to compare, by name, and notes on any that were skipped."""
    from mmvis_msts.ops import (ext_available, ms_deform_attn,
                                ms_deform_attn_pytorch)
    if not ext_available(device):
        raise SystemExit(f'mmvis_msts._ext has no {device} kernel: build it '
                         'first (pip install -e . --no-build-isolation)')
    impls = {'mmvis_msts': ms_deform_attn}
    notes = []
    try:
        mmcv_msda = importlib.import_module('mmcv.ops.multi_scale_deform_attn')
    except ImportError as error:
        # The same grid_sample algorithm as mmcv's PyTorch path: what runs
        # where no compiled op does.
        impls['PyTorch reference (baseline)'] = (
            lambda value, shapes, starts, loc, attn: ms_deform_attn_pytorch(
                value, shapes, loc, attn))
        notes.append(f'mmcv skipped: cannot import mmcv.ops ({error}); the '
                     'baseline is mmvis_msts.ops.ms_deform_attn_pytorch')
        return impls, notes
    if device == 'cpu':
        impls['mmcv (PyTorch path)'] = (
            lambda value, shapes, starts, loc, attn: mmcv_msda.
            multi_scale_deformable_attn_pytorch(value, shapes, loc, attn))
    else:
        impls['mmcv (CUDA op)'] = (lambda value, shapes, starts, loc, attn:
                                   mmcv_msda.MultiScaleDeformableAttnFunction.
                                   apply(value, shapes, starts, loc, attn, 64))
    return impls, notes


def make_inputs(shape: str, device: str, seed: int = 0) -> List[Tensor]:
    """(value, spatial_shapes, level_start_index, loc, attn, grad_out)."""
    batch, num_queries = SHAPES[shape]
    gen = torch.Generator().manual_seed(seed)
    spatial_shapes = torch.tensor(LEVELS, dtype=torch.long)
    sizes = spatial_shapes.prod(1)
    level_start_index = torch.cat([sizes.new_zeros(1), sizes.cumsum(0)[:-1]])
    num_levels = len(LEVELS)
    head_dims = EMBED_DIMS // NUM_HEADS
    value = torch.randn(
        batch, int(sizes.sum()), NUM_HEADS, head_dims, generator=gen)
    # uniform over [-0.05, 1.05]^2: some points fall off the maps
    loc = torch.rand(
        batch,
        num_queries,
        NUM_HEADS,
        num_levels,
        NUM_POINTS,
        2,
        generator=gen) * 1.1 - 0.05
    attn = torch.randn(
        batch, num_queries, NUM_HEADS, num_levels * NUM_POINTS,
        generator=gen).softmax(-1).view(batch, num_queries, NUM_HEADS,
                                        num_levels, NUM_POINTS)
    grad_out = torch.randn(batch, num_queries, EMBED_DIMS, generator=gen)
    return [
        t.to(device) for t in (value, spatial_shapes, level_start_index, loc,
                               attn, grad_out)
    ]


def run_once(fn: OpFn, inputs: List[Tensor], backward: bool) -> List[Tensor]:
    """Forward (and backward); returns output (and value/loc/attn grads)."""
    value, shapes, starts, loc, attn, grad_out = inputs
    if not backward:
        with torch.no_grad():
            return [fn(value, shapes, starts, loc, attn)]
    value, loc, attn = (
        t.detach().requires_grad_() for t in (value, loc, attn))
    out = fn(value, shapes, starts, loc, attn)
    out.backward(grad_out)
    return [out.detach(), value.grad, loc.grad, attn.grad]


# -- measurement --------------------------------------------------------------
class CpuPeakMemory:
    """Peak RSS growth while a call runs (see the module docstring)."""

    name = ('peak RSS growth (VmHWM reset via /proc/self/clear_refs, '
            'after malloc_trim)')

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(None)
        with open('/proc/self/clear_refs', 'w') as f:  # fails early if denied
            f.write('5')

    @staticmethod
    def _status_kib(field: str) -> int:
        with open('/proc/self/status') as f:
            return int(re.search(rf'{field}:\s+(\d+)', f.read()).group(1))

    def measure(self, call: Callable[[], object]) -> float:
        gc.collect()
        self._libc.malloc_trim(0)
        before = self._status_kib('VmRSS')
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        result = call()
        peak = self._status_kib('VmHWM')
        del result
        return (peak - before) / 1024


class CudaPeakMemory:
    name = 'torch.cuda.max_memory_allocated() growth'

    def measure(self, call: Callable[[], object]) -> float:
        gc.collect()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        result = call()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
        del result
        return (peak - before) / 2**20


def timed(call: Callable[[], object], device: str, repeat: int) -> float:
    """Median wall time in ms over ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        if device == 'cuda':
            torch.cuda.synchronize()
        start = time.perf_counter()
        result = call()
        if device == 'cuda':
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
        del result
    return statistics.median(times)


def compare(ours: List[Tensor], theirs: List[Tensor]) -> List[float]:
    """max |ours - theirs| / max |theirs| per output and gradient."""
    return [((a.float() - b.float()).abs().max() /
             b.float().abs().max().clamp_min(1e-12)).item()
            for a, b in zip(ours, theirs)]


# -- report -------------------------------------------------------------------
def machine_description(device: str) -> str:
    if device == 'cuda':
        return torch.cuda.get_device_name()
    model = platform.processor() or 'unknown CPU'
    try:
        with open('/proc/cpuinfo') as f:
            model = re.search(r'model name\s*:\s*(.*)', f.read()).group(1)
    except (OSError, AttributeError):
        pass
    return f'{model}, {torch.get_num_threads()} torch threads'


def main() -> int:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda but CUDA is not available')
    impls, notes = load_impls(args.device)
    memory = CpuPeakMemory() if args.device == 'cpu' else CudaPeakMemory()
    baseline = next((name for name in impls if name != 'mmvis_msts'), None)

    rows, match_lines, ok = [], [], True
    for shape in args.shapes:
        inputs = make_inputs(shape, args.device)
        results: Dict[str, Dict[str, float]] = {}
        outputs: Dict[str, List[Tensor]] = {}
        for name, fn in impls.items():
            fwd = lambda: run_once(fn, inputs, backward=False)  # noqa: E731
            fwd_bwd = lambda: run_once(fn, inputs, backward=True)  # noqa
            outputs[name] = fwd_bwd()  # also warms up
            results[name] = dict(
                fwd_mem=memory.measure(fwd),
                fwd_bwd_mem=memory.measure(fwd_bwd),
                fwd_ms=timed(fwd, args.device, args.repeat),
                fwd_bwd_ms=timed(fwd_bwd, args.device, args.repeat))
            print(f'{shape} {name}: {results[name]}', file=sys.stderr)
        if baseline is not None:
            errors = compare(outputs['mmvis_msts'], outputs[baseline])
            good = max(errors) <= MATCH_TOL
            ok &= good
            match_lines.append(
                f'- {shape}: {"match" if good else "MISMATCH"} (max relative '
                'difference of output / grad value / grad loc / grad attn: ' +
                ' / '.join(f'{e:.1e}' for e in errors) + ')')
        del outputs
        for name, res in results.items():
            speed = mem = ''
            if baseline is not None and name != baseline:
                base = results[baseline]
                speed = (f'{base["fwd_ms"] / res["fwd_ms"]:.1f}x / '
                         f'{base["fwd_bwd_ms"] / res["fwd_bwd_ms"]:.1f}x')
                fwd_mem = res['fwd_mem'] / max(base['fwd_mem'], 1e-3)
                bwd_mem = res['fwd_bwd_mem'] / max(base['fwd_bwd_mem'], 1e-3)
                mem = f'{fwd_mem:.2f} / {bwd_mem:.2f}'
            rows.append(f'| {shape} | {name} | {res["fwd_ms"]:.1f} | '
                        f'{res["fwd_bwd_ms"]:.1f} | {res["fwd_mem"]:.1f} | '
                        f'{res["fwd_bwd_mem"]:.1f} | {speed} | {mem} |')

    batch, enc_queries = SHAPES['encoder']
    report = [
        f'Multi-scale deformable attention, {args.device}, float32: '
        f'{batch} frames, levels {", ".join(f"{h}x{w}" for h, w in LEVELS)}, '
        f'{NUM_HEADS} heads, {NUM_POINTS} points, {EMBED_DIMS} channels; '
        f'encoder = {enc_queries} queries/frame, decoder = '
        f'{SHAPES["decoder"][1]} queries/frame.',
        '',
        f'Machine: {machine_description(args.device)}; torch '
        f'{torch.__version__}. Times: median of {args.repeat} runs. Memory: '
        f'{memory.name}, inputs excluded.',
        '',
        '| shape | op | fwd ms | fwd+bwd ms | fwd peak MiB | '
        'fwd+bwd peak MiB | speed-up vs baseline (fwd / fwd+bwd) | '
        'memory vs baseline (fwd / fwd+bwd) |',
        '|---|---|---:|---:|---:|---:|---:|---:|',
        *rows,
        '',
        *(match_lines or ['- results not compared (no baseline)']),
        *(f'- {note}' for note in notes),
    ]
    text = '\n'.join(report)
    print(text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text + '\n')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
