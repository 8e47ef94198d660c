from . import synthetic  # noqa: F401
from .synthetic_vis import SyntheticVISDataset
