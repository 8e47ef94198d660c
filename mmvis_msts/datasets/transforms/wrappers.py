"""Transform wrappers that work inside TransformBroadcaster."""
from mmcv.transforms import RandomChoice
from mmdet.registry import TRANSFORMS


@TRANSFORMS.register_module()
class SharedRandomChoice(RandomChoice):
    """mmcv's ``RandomChoice`` that also works under
    ``TransformBroadcaster(share_random_params=True)`` once mmdet is
    imported, so every frame of a clip takes the same branch.

    ``cache_randomness`` records decorated methods in a class-level list that
    subclasses inherit and append to. mmdet's ``RandAugment(RandomChoice)``
    re-decorates ``random_pipeline_index``, so the list of mmcv's
    ``RandomChoice`` names it twice; ``cache_random_params`` then wraps the
    method twice, counts every call twice and raises "should be invoked at
    most once" on the first clip (mmcv 2.1.0, mmdet 3.3.0). This class only
    gives itself its own list.

    Args:
        transforms (list[list]): Candidate sub-pipelines.
        prob (list[float], optional): Their probabilities (uniform if None).
    """

    _methods_with_randomness = ['random_pipeline_index']
