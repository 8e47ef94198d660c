"""The synthetic VIS data set as an mmdet dataset."""
from typing import List

from mmdet.datasets import YouTubeVISDataset
from mmdet.registry import DATASETS

from .synthetic.settings import DEFAULT_CLASSES


@DATASETS.register_module()
class SyntheticVISDataset(YouTubeVISDataset):
    """Synthetic video instance segmentation data set.

    Reads the YouTube-VIS-format json written by
    ``tools/misc/generate_synthetic_vis.py`` exactly as
    :class:`mmdet.datasets.YouTubeVISDataset` does, with the synthetic
    shape classes instead of a YouTube-VIS year. ``YouTubeVISDataset``
    writes its class list into its own class attribute from
    ``dataset_version``; this subclass keeps its own ``METAINFO`` and takes
    no year, so it never touches ``YouTubeVISDataset.METAINFO``. For data
    generated with other ``classes``, pass ``metainfo=dict(classes=...)``.

    Args:
        *args: Positional arguments of
            :class:`mmdet.datasets.BaseVideoDataset` (ann_file, metainfo,
            data_root, ...).
        dataset_version (str): Only 'synthetic' is accepted; the argument
            exists because ``YouTubeVISDataset`` configs pass it.
            Defaults to 'synthetic'.
        **kwargs: Keyword arguments of
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

    def load_data_list(self) -> List[dict]:
        """Load the videos and check that every class is in the json.

        Returns:
            list[dict]: One dict per video (see ``BaseVideoDataset``).

        Raises:
            ValueError: If a class name of ``metainfo`` has no category in
                the annotation file (labels would shift silently).
        """
        data_list = super().load_data_list()
        classes = self.metainfo['classes']
        if len(self.cat_ids) != len(classes):
            raise ValueError(
                f'{self.ann_file} has categories for {len(self.cat_ids)} of '
                f'the {len(classes)} classes {tuple(classes)}: pass the '
                'classes it was generated with as metainfo=dict(classes=...)')
        return data_list
