"""OVIS (Occluded Video Instance Segmentation) dataset."""
from mmdet.datasets import YouTubeVISDataset
from mmdet.registry import DATASETS

from .checked_dataset import CheckedVideoDatasetMixin


@DATASETS.register_module()
class OVISDataset(CheckedVideoDatasetMixin, YouTubeVISDataset):
    """OVIS in mmdet's converted YouTube-VIS (COCO-video) json format.

    OVIS ships its annotations in the raw YouTube-VIS 2019 format;
    ``tools/dataset_converters/ytvis_raw_to_cocovid.py`` turns them into the
    json :class:`YouTubeVISDataset` loads. The 25 class names are the
    category names of the official files, spelling included ('Vehical').

    ``YouTubeVISDataset`` sets its classes by writing ``cls.METAINFO`` for a
    dataset year. This subclass keeps its own class-level ``METAINFO`` and
    only validates ``dataset_version``, so building it never changes
    ``YouTubeVISDataset.METAINFO`` (and vice versa).

    Args:
        dataset_version (str): Only ``'ovis'`` is known. Defaults to
            ``'ovis'``.
        *args, **kwargs: ``strict`` and ``frame_check`` (the build-time
            checks of :class:`CheckedVideoDatasetMixin`) and the arguments
            of :class:`mmdet.datasets.BaseVideoDataset`.
    """

    METAINFO = dict(
        classes=('Person', 'Bird', 'Cat', 'Dog', 'Horse', 'Sheep', 'Cow',
                 'Elephant', 'Bear', 'Zebra', 'Giraffe', 'Poultry',
                 'Giant_panda', 'Lizard', 'Parrot', 'Monkey', 'Rabbit',
                 'Tiger', 'Fish', 'Turtle', 'Bicycle', 'Motorcycle',
                 'Airplane', 'Boat', 'Vehical'))

    def __init__(self, *args, dataset_version: str = 'ovis', **kwargs):
        super().__init__(dataset_version, *args, **kwargs)

    @classmethod
    def set_dataset_classes(cls, dataset_version: str) -> None:
        """Check the version; the classes are fixed in ``METAINFO``.

        Args:
            dataset_version (str): Must be ``'ovis'``.
        """
        if dataset_version != 'ovis':
            raise NotImplementedError(
                f"OVISDataset knows dataset_version 'ovis' only, got "
                f'{dataset_version!r}')
