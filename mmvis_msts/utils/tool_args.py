"""Arguments and config setup shared by the tools (``tools/train.py``,
``tools/test.py``, the benchmarks)."""
import argparse
import logging
import os
import os.path as osp
from typing import List

from mmengine.config import Config, ConfigDict, DictAction
from mmengine.logging import print_log


def add_compile_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """``--compile [BACKEND]``: ``torch.compile`` the network
    (``mmvis_msts.apis.compile_model``), inductor unless a backend is named.

    Args:
        parser (ArgumentParser): The tool's parser; gets the argument.
        what (str): When compiling happens again for this tool, for the
            help text, e.g. ``'each new video length'``.
    """
    parser.add_argument(
        '--compile',
        nargs='?',
        const='inductor',
        default=None,
        metavar='BACKEND',
        help='torch.compile the network with BACKEND (default inductor): '
        'the first call compiles (minutes at R-50 size on a CPU), and '
        f'{what} compiles again (docs/inference.md)')


def parse_tool_args(parser: argparse.ArgumentParser,
                    cfg_options_example: str) -> argparse.Namespace:
    """Add the runner arguments common to both tools, then parse.

    Adds ``--cfg-options``, ``--launcher`` and ``--local-rank`` after the
    tool's own arguments and exports the local rank as ``LOCAL_RANK``
    unless the launcher has set it already.

    Args:
        parser (argparse.ArgumentParser): Parser with the tool's own
            arguments, among them ``config`` and ``--work-dir``.
        cfg_options_example (str): Example overrides shown in the help of
            ``--cfg-options``.

    Returns:
        argparse.Namespace: Parsed arguments.
    """
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings as key=value pairs, e.g. '
        f'{cfg_options_example}')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank (older: --local_rank);
    # torchrun sets LOCAL_RANK instead.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def load_tool_config(args: argparse.Namespace) -> Config:
    """Load ``args.config`` with the launcher, overrides and work dir.

    Args:
        args (argparse.Namespace): Arguments from :func:`parse_tool_args`.

    Returns:
        Config: The config; ``work_dir`` priority: command line > config >
        ``./work_dirs/<config name>``.
    """
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    return cfg


def wrapper_cfgs(cfg: Config) -> List[ConfigDict]:
    """The optim-wrapper configs of ``cfg``: ``optim_wrapper`` itself, or
    its ``model`` and ``discriminator`` entries under
    ``VISAdversarialOptimWrapperConstructor``."""
    if cfg.optim_wrapper.get('constructor') == \
            'VISAdversarialOptimWrapperConstructor':
        return [cfg.optim_wrapper.model, cfg.optim_wrapper.discriminator]
    return [cfg.optim_wrapper]


def set_wrapper_type(cfg: Config, wrapper_type: str, **options) -> None:
    """Switch every ``OptimWrapper`` of ``cfg`` to ``wrapper_type``.

    Args:
        cfg (Config): The training config; changed in place.
        wrapper_type (str): ``'AmpOptimWrapper'`` (``--amp``) or
            ``'BF16OptimWrapper'`` (``--bf16``).
        **options: Extra arguments of the new wrapper.

    Raises:
        ValueError: If a wrapper is already of another type than
            ``OptimWrapper`` (the two flags do not combine).
    """
    for wrapper in wrapper_cfgs(cfg):
        current = wrapper.get('type', 'OptimWrapper')
        if current == wrapper_type:
            print_log(
                f'{wrapper_type} is already set in the config.',
                logger='current',
                level=logging.WARNING)
            continue
        if current != 'OptimWrapper':
            raise ValueError(f'--amp and --bf16 switch optim wrappers of '
                             f'type "OptimWrapper"; the config has '
                             f'{current!r}.')
        wrapper.update(type=wrapper_type, **options)
