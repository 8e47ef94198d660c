"""ClipLinker on hand-made candidates of consecutive windows.

Masks are 1x8 strips on 2 shared frames; an object at column c covers
columns c..c+1. Embeddings are unit vectors, so cosines are known.
"""
import pytest
import torch
from mmdet.registry import MODELS

import mmvis_msts  # noqa: F401
from mmvis_msts.models.trackers import ClipLinker, LinkCandidates

SHARED = 2


def strip(cols):
    """(N, SHARED, 1, 8) masks, one object per column start."""
    masks = torch.zeros(len(cols), SHARED, 1, 8, dtype=torch.bool)
    for i, c in enumerate(cols):
        if c is not None:
            masks[i, :, 0, c:c + 2] = True
    return masks


def cands(cols_prev, cols_next, embeds, scores, labels, frames=4):
    """Candidates at ``cols_prev`` on the shared frames, ``cols_next`` on
    the next window's."""
    return LinkCandidates(
        scores=torch.tensor(scores),
        labels=torch.tensor(labels),
        embeds=torch.tensor(embeds, dtype=torch.float),
        shared_masks=strip(cols_prev) if cols_prev is not None else
        torch.zeros(len(scores), 0, 1, 8, dtype=torch.bool),
        next_masks=strip(cols_next),
        num_frames=frames)


E0, E1, E2 = [1., 0., 0.], [0., 1., 0.], [0., 0., 1.]


def test_registered():
    assert isinstance(MODELS.build(dict(type='ClipLinker')), ClipLinker)


def test_first_window_numbers_in_order():
    linker = ClipLinker()
    ids = linker.link(cands(None, [0, 4], [E0, E1], [0.9, 0.8], [0, 1]))
    assert ids.tolist() == [0, 1]


def test_instance_crossing_boundary_keeps_id():
    linker = ClipLinker()
    linker.link(cands(None, [0, 5], [E0, E1], [0.9, 0.8], [0, 1]))
    # the second window lists them in the other order; same masks on the
    # shared frames, slightly turned embeddings
    ids = linker.link(
        cands([5, 0], [5, 0], [[0.1, 1., 0.], [1., 0.1, 0.]], [0.7, 0.6],
              [1, 0]))
    assert ids.tolist() == [1, 0]


def test_swapping_instances_keep_their_ids():
    """Two objects that cross: on the shared frames A is left, B right; in
    the next window they swap places. The overlap decides, not the order
    or where they end up."""
    linker = ClipLinker()
    linker.link(cands(None, [1, 5], [E0, E1], [0.9, 0.9], [0, 0]))
    ids = linker.link(cands([5, 1], [1, 5], [E1, E0], [0.9, 0.9], [0, 0]))
    assert ids.tolist() == [1, 0]
    # third window: B (id 1) is now on the left of the shared frames
    ids = linker.link(cands([1, 5], [1, 5], [E1, E0], [0.9, 0.9], [0, 0]))
    assert ids.tolist() == [1, 0]


def test_new_object_gets_new_id():
    linker = ClipLinker()
    linker.link(cands(None, [0], [E0], [0.9], [0]))
    ids = linker.link(cands([0, 5], [0, 5], [E0, E2], [0.9, 0.8], [0, 2]))
    assert ids.tolist() == [0, 1]


def test_below_new_track_thr_starts_a_track():
    """The only track and the only candidate disagree everywhere: matched by
    Hungarian, undone by the threshold."""
    linker = ClipLinker(new_track_thr=0.3)
    linker.link(cands(None, [0], [E0], [0.9], [0]))
    ids = linker.link(cands([5], [5], [E1], [0.9], [1]))
    assert ids.tolist() == [1]


def test_track_that_ends():
    """Track 0 leaves after window 1; it is kept (inactive) for
    ``max_inactive`` windows, then forgotten; ids are never reused."""
    linker = ClipLinker(max_inactive=1)
    linker.link(cands(None, [0, 5], [E0, E1], [0.9, 0.8], [0, 1]))
    assert linker.link(cands([5], [5], [E1], [0.8], [1])).tolist() == [1]
    assert set(linker.tracks) == {0, 1}
    assert linker.tracks[0].next_masks is None
    assert linker.link(cands([5], [5], [E1], [0.8], [1])).tolist() == [1]
    assert set(linker.tracks) == {1}
    # the same object as track 0 comes back: a new id
    ids = linker.link(cands([5, 0], [5, 0], [E1, E0], [0.8, 0.9], [1, 0]))
    assert ids.tolist() == [1, 2]


def test_inactive_track_relinked_by_embedding():
    """Absent from one window (no masks to compare), the track is found
    again by its embedding alone."""
    linker = ClipLinker(max_inactive=2)
    linker.link(cands(None, [0, 5], [E0, E1], [0.9, 0.8], [0, 1]))
    linker.link(cands([5], [5], [E1], [0.8], [1]))
    ids = linker.link(cands([5, 0], [5, 0], [E1, E0], [0.8, 0.9], [1, 0]))
    assert ids.tolist() == [1, 0]


def test_two_candidates_want_one_track():
    """Both candidates overlap track 0; the better one (same mask, same
    embedding) gets it, the other starts a track."""
    linker = ClipLinker()
    linker.link(cands(None, [2], [E0], [0.9], [0]))
    ids = linker.link(
        cands([3, 2], [3, 2], [[1., 1., 0.], E0], [0.9, 0.8], [0, 0]))
    assert ids.tolist() == [1, 0]


def test_scores_and_labels_across_windows():
    """Score: frame-weighted mean of window scores; label: vote weighted by
    score x frames (0.6 x 4 = 2.4 for class 1 beats 0.9 x 2 = 1.8)."""
    linker = ClipLinker(w_label=0.)
    linker.link(cands(None, [0], [E0], [0.9], [0], frames=2))
    ids = linker.link(cands([0], [0], [E0], [0.6], [1], frames=4))
    assert ids.tolist() == [0]
    torch.testing.assert_close(
        linker.scores(ids), torch.tensor([(0.9 * 2 + 0.6 * 4) / 6]))
    assert linker.labels(ids).tolist() == [1]


def test_reset_and_bad_args():
    linker = ClipLinker()
    linker.link(cands(None, [0], [E0], [0.9], [0]))
    linker.reset()
    assert linker.link(cands(None, [0], [E0], [0.9], [0])).tolist() == [0]
    with pytest.raises(ValueError, match='w_iou'):
        ClipLinker(w_iou=-1.)
    with pytest.raises(ValueError, match='shared frames'):
        linker.link(
            LinkCandidates(
                scores=torch.tensor([0.9]),
                labels=torch.tensor([0]),
                embeds=torch.tensor([E0]),
                shared_masks=torch.zeros(1, 3, 1, 8, dtype=torch.bool),
                next_masks=strip([0]),
                num_frames=1))
