from . import discriminators  # noqa: F401
from . import layers  # noqa: F401
from . import task_modules  # noqa: F401
from . import trackers  # noqa: F401
from . import tracking_heads  # noqa: F401
from . import vis  # noqa: F401
