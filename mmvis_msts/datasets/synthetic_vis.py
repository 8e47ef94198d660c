"""The synthetic VIS data set as an mmdet dataset."""
from mmdet.datasets import YouTubeVISDataset
from mmdet.registry import DATASETS

from .checked_dataset import CheckedVideoDatasetMixin
from .synthetic.settings import DEFAULT_CLASSES


@DATASETS.register_module()
class SyntheticVISDataset(CheckedVideoDatasetMixin, YouTubeVISDataset):
    """Synthetic video instance segmentation data set.

    Reads the YouTube-VIS-format json written by
    ``tools/misc/generate_synthetic_vis.py`` exactly as
    :class:`mmdet.datasets.YouTubeVISDataset` does, with the synthetic
    shape classes instead of a YouTube-VIS year. ``YouTubeVISDataset``
    writes its class list into its own class attribute from
    ``dataset_version``; this subclass keeps its own ``METAINFO`` and takes
    no year, so it never touches ``YouTubeVISDataset.METAINFO``. For data
    generated with other ``classes``, pass ``metainfo=dict(classes=...)``.
    The file and its frames are checked when the dataset is built
    (:class:`CheckedVideoDatasetMixin`): among others, every class must
    have its category, in the same order.

    Args:
        *args: Positional arguments of
            :class:`mmdet.datasets.BaseVideoDataset` (ann_file, metainfo,
            data_root, ...).
        dataset_version (str): Only 'synthetic' is accepted; the argument
            exists because ``YouTubeVISDataset`` configs pass it.
            Defaults to 'synthetic'.
        **kwargs: ``strict`` and ``frame_check`` (see
            :class:`CheckedVideoDatasetMixin`) and the keyword arguments of
            :class:`mmdet.datasets.BaseVideoDataset`.
    """

    METAINFO = dict(classes=DEFAULT_CLASSES)

    def __init__(self,
                 *args,
                 dataset_version: str = 'synthetic',
                 **kwargs) -> None:
        super().__init__(dataset_version, *args, **kwargs)

    @classmethod
    def set_dataset_classes(cls, dataset_version: str) -> None:
        """Check the version; the classes stay those of ``METAINFO``.

        Args:
            dataset_version (str): Must be 'synthetic'.
        """
        if dataset_version != 'synthetic':
            raise ValueError(
                f"{cls.__name__} takes dataset_version='synthetic', got "
                f'{dataset_version!r}; for YouTube-VIS data use '
                'YouTubeVISDataset')
