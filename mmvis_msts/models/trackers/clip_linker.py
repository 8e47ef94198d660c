"""Association of the instances of consecutive windows of a video.

Shapes use the package notation (``mmvis_msts``): N candidates of a window,
T frames, D embedding channels, h and w the size of the low-resolution
masks used for linking (the mask output stride).
"""
from dataclasses import dataclass, field
from typing import Dict, Optional

import torch
from mmdet.registry import MODELS
from scipy.optimize import linear_sum_assignment
from torch import Tensor


@dataclass
class LinkCandidates:
    """The instances of one window, as :meth:`ClipLinker.link` takes them.

    Attributes:
        scores (Tensor): (N,) window scores (probabilities).
        labels (Tensor): (N,) 0-based labels.
        embeds (Tensor): (N, D) instance embeddings.
        shared_masks (Tensor): (N, T_s, h, w) bool masks on the T_s frames
            this window shares with the previous one (its first frames);
            T_s = 0 for the first window or windows without overlap.
        next_masks (Tensor): (N, T_n, h, w) bool masks on the T_n frames
            the next window will share (this window's last frames), stored
            for the next :meth:`ClipLinker.link`; T_n = 0 for the last one.
        num_frames (int): Frames this window contributes to the output,
            the weight of its scores in the track scores.
    """

    scores: Tensor
    labels: Tensor
    embeds: Tensor
    shared_masks: Tensor
    next_masks: Tensor
    num_frames: int


@dataclass
class _Track:
    """State of one running track."""

    embed: Tensor
    next_masks: Optional[Tensor]
    score_sum: float = 0.0
    num_frames: int = 0
    label_votes: Dict[int, float] = field(default_factory=dict)
    inactive: int = 0


@MODELS.register_module()
class ClipLinker:
    """Link the instances of overlapping windows into tracks.

    The running tracks hold an id, their score statistics, a score-weighted
    label vote, the instance embedding of their latest window and their
    masks on the frames the next window shares. :meth:`link` matches the
    candidates of a new window to them (Hungarian matching, scipy's
    ``linear_sum_assignment``) on the similarity

    ``s = w_iou * IoU + w_emb * cos + w_label * [same label]``,

    where IoU is the mask IoU averaged over the shared frames and cos the
    cosine similarity of the embeddings. A track without masks on the
    shared frames (no overlap, or absent from the previous window) is
    compared by the embedding alone: ``s = (w_iou + w_emb) * cos +
    w_label * [same label]``. A matched pair with ``s < new_track_thr``
    is undone: the candidate starts a new track.

    Track scores across windows: the mean of the window scores weighted by
    the frames each window contributes (``score_sum / num_frames``); the
    per-frame scores of the output are the window scores, so the mean over
    a track's frames (what the YouTube-VIS conversion computes) is this
    score. Track labels: the class with the largest sum of
    ``window score * frames`` over the track's windows.

    Args:
        w_iou (float): Weight of the mean mask IoU. Defaults to 0.5.
        w_emb (float): Weight of the cosine similarity. Defaults to 0.5.
        w_label (float): Bonus for the same label; it breaks the tie
            between the copies of one query kept with several classes.
            Defaults to 0.05.
        new_track_thr (float): Similarity below which a candidate starts a
            new track. Defaults to 0.3.
        max_inactive (int): Windows a track may go unmatched before it is
            forgotten (the memory stays flat over a long video).
            Defaults to 2.
    """

    def __init__(self,
                 w_iou: float = 0.5,
                 w_emb: float = 0.5,
                 w_label: float = 0.05,
                 new_track_thr: float = 0.3,
                 max_inactive: int = 2) -> None:
        if min(w_iou, w_emb, w_label) < 0 or w_iou + w_emb <= 0:
            raise ValueError('w_iou, w_emb and w_label must be >= 0 with '
                             f'w_iou + w_emb > 0, got {w_iou}, {w_emb}, '
                             f'{w_label}')
        if max_inactive < 0:
            raise ValueError(f'max_inactive must be >= 0, got {max_inactive}')
        self.w_iou = w_iou
        self.w_emb = w_emb
        self.w_label = w_label
        self.new_track_thr = new_track_thr
        self.max_inactive = max_inactive
        self.reset()

    def reset(self) -> None:
        """Forget every track (call before each video)."""
        self.tracks: Dict[int, _Track] = {}
        self.num_tracks = 0

    def similarity(self, candidates: LinkCandidates) -> Tensor:
        """Similarity ``s`` of every (running track, candidate) pair.

        Args:
            candidates (LinkCandidates): The window's instances.

        Returns:
            Tensor: (num_tracks, N) similarities, tracks in id order.
        """
        tracks = list(self.tracks.values())
        num = len(candidates.scores)
        if not tracks or num == 0:
            return candidates.scores.new_zeros(len(tracks), num)
        embeds = torch.stack([t.embed for t in tracks])
        cos = torch.nn.functional.normalize(embeds, dim=1) @ \
            torch.nn.functional.normalize(candidates.embeds, dim=1).t()
        sim = (self.w_iou + self.w_emb) * cos
        shared = candidates.shared_masks.flatten(2).float()  # (N, T_s, hw)
        for i, track in enumerate(tracks):
            if track.next_masks is None or shared.size(1) == 0:
                continue
            if track.next_masks.shape[0] != shared.size(1):
                raise ValueError(
                    f'a track holds masks on {track.next_masks.shape[0]} '
                    f'frames, the candidates on {shared.size(1)} shared '
                    'frames')
            prev = track.next_masks.flatten(1).float()  # (T_s, hw)
            inter = (shared * prev).sum(-1)
            union = shared.sum(-1) + prev.sum(-1) - inter
            # empty in both: IoU 1 (they agree); mean over the T_s frames
            iou = torch.where(union > 0, inter / union.clamp(min=1),
                              torch.ones_like(inter)).mean(1)
            sim[i] = self.w_iou * iou + self.w_emb * cos[i]
        labels = torch.tensor([self._label(t) for t in tracks],
                              device=sim.device)
        same = labels[:, None] == candidates.labels[None].to(sim.device)
        return sim + self.w_label * same.to(sim.dtype)

    def link(self, candidates: LinkCandidates) -> Tensor:
        """Assign the window's candidates to tracks and update them.

        Args:
            candidates (LinkCandidates): The window's instances.

        Returns:
            Tensor: (N,) track ids (long); new tracks get the next unused
            ids, in candidate order.
        """
        track_ids = list(self.tracks)
        # float32 under a caller's autocast (bfloat16 inference): the
        # solver reads numpy, which has no bfloat16
        with torch.autocast(candidates.scores.device.type, enabled=False):
            sim = self.similarity(candidates)
        num = len(candidates.scores)
        ids = [-1] * num
        if sim.numel():
            rows, cols = linear_sum_assignment(
                sim.detach().cpu().numpy(), maximize=True)
            for r, c in zip(rows, cols):
                if sim[r, c] >= self.new_track_thr:
                    ids[c] = track_ids[r]
        for c in range(num):
            if ids[c] < 0:
                ids[c] = self.num_tracks
                self.num_tracks += 1
        matched = set(ids)
        for track_id in track_ids:
            if track_id in matched:
                continue
            track = self.tracks[track_id]
            track.inactive += 1
            track.next_masks = None
            if track.inactive > self.max_inactive:
                del self.tracks[track_id]
        for c, track_id in enumerate(ids):
            self._update(track_id, candidates, c)
        return torch.tensor(ids, dtype=torch.long)

    def _update(self, track_id: int, candidates: LinkCandidates,
                index: int) -> None:
        """Fold candidate ``index`` into track ``track_id``."""
        track = self.tracks.get(track_id)
        if track is None:
            track = _Track(embed=candidates.embeds[index], next_masks=None)
            self.tracks[track_id] = track
        weight = float(candidates.scores[index]) * candidates.num_frames
        label = int(candidates.labels[index])
        track.embed = candidates.embeds[index]
        track.next_masks = candidates.next_masks[index]
        track.score_sum += weight
        track.num_frames += candidates.num_frames
        track.label_votes[label] = track.label_votes.get(label, 0.) + weight
        track.inactive = 0

    @staticmethod
    def _label(track: _Track) -> int:
        return max(track.label_votes, key=track.label_votes.get)

    def labels(self, ids: Tensor) -> Tensor:
        """The voted labels of tracks.

        Args:
            ids (Tensor): (N,) ids of running tracks.

        Returns:
            Tensor: (N,) 0-based labels.
        """
        return torch.tensor([self._label(self.tracks[int(i)]) for i in ids],
                            dtype=torch.long)

    def scores(self, ids: Tensor) -> Tensor:
        """The frame-weighted mean window scores of tracks.

        Args:
            ids (Tensor): (N,) ids of running tracks.

        Returns:
            Tensor: (N,) scores.
        """
        return torch.tensor([
            self.tracks[int(i)].score_sum /
            max(self.tracks[int(i)].num_frames, 1) for i in ids
        ])
