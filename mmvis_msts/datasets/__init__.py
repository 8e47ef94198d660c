from . import converters  # noqa: F401
from . import synthetic  # noqa: F401
from . import transforms  # noqa: F401
from . import validation  # noqa: F401
from .checked_dataset import CheckedVideoDatasetMixin, CheckedYouTubeVISDataset
from .frame_level_dataset import FrameLevelVideoDataset
from .ovis_dataset import OVISDataset
from .synthetic_vis import SyntheticVISDataset

__all__ = [
    'CheckedVideoDatasetMixin', 'CheckedYouTubeVISDataset',
    'FrameLevelVideoDataset', 'OVISDataset', 'SyntheticVISDataset'
]
