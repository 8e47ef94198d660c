from .dist_utils import close_dist, init_cpu_dist, resolve_dist_backend
from .safe_load import (MMENGINE_CHECKPOINT_GLOBALS, UnsafeCheckpointError,
                        load_checkpoint_weights_only)
from .tool_args import (add_compile_argument, load_tool_config,
                        parse_tool_args, set_wrapper_type)

__all__ = [
    'add_compile_argument', 'MMENGINE_CHECKPOINT_GLOBALS',
    'UnsafeCheckpointError', 'close_dist', 'init_cpu_dist',
    'load_checkpoint_weights_only', 'load_tool_config', 'parse_tool_args',
    'resolve_dist_backend', 'set_wrapper_type'
]
