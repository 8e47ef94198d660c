import numpy as np

from mmvis_msts.datasets.transforms import DropEmptyClip


def clip(labels, ignore=None):
    results = dict(gt_bboxes_labels=[np.array(x, np.int64) for x in labels])
    if ignore is not None:
        results['gt_ignore_flags'] = [np.array(x, bool) for x in ignore]
    return results


def test_clip_with_an_instance_passes_unchanged():
    results = clip([[], [2], []])
    assert DropEmptyClip()(results) is results


def test_clip_without_instances_is_dropped():
    assert DropEmptyClip()(clip([[], [], []])) is None


def test_ignored_instances_do_not_count():
    assert DropEmptyClip()(clip([[1], [2, 3]], [[True], [True, True]])) is None
    assert DropEmptyClip()(clip([[1], [2, 3]],
                                [[True], [True, False]])) is not None
