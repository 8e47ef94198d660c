"""Arguments and config setup shared by ``tools/train.py`` and
``tools/test.py``."""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction


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
