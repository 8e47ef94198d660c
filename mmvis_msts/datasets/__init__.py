from . import converters  # noqa: F401
from . import synthetic  # noqa: F401
from . import transforms  # noqa: F401
from .frame_level_dataset import FrameLevelVideoDataset
from .ovis_dataset import OVISDataset
from .synthetic_vis import SyntheticVISDataset

__all__ = ['FrameLevelVideoDataset', 'OVISDataset', 'SyntheticVISDataset']
