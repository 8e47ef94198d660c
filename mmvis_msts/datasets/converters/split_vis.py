"""Split a COCO-video (YouTube-VIS format) json by video."""
import random
from typing import Dict, Optional, Sequence, Tuple


def split_vis_json(ann: Dict,
                   num_holdout: Optional[int] = None,
                   holdout_names: Optional[Sequence[str]] = None,
                   seed: int = 0) -> Tuple[Dict, Dict]:
    """Split annotated videos into a training part and a held-out part.

    Used to get a local AP on annotated videos: the held-out json keeps its
    annotations, so ``YouTubeVISMetric`` (``format_only=False``) can score
    it. Every image and annotation follows its video; ids are unchanged
    (still unique across both files) and other top-level keys
    (``categories``, ``info``, ...) are copied to both.

    Args:
        ann (dict): The json (``videos``, ``images``, ``annotations``).
        num_holdout (int, optional): Number of videos to hold out, picked at
            random with ``seed``. Exactly one of ``num_holdout`` and
            ``holdout_names`` must be given.
        holdout_names (Sequence[str], optional): Names of the videos to hold
            out.
        seed (int): Seed of the random pick. Defaults to 0.

    Returns:
        tuple[dict, dict]: The training json and the held-out json.
    """
    if (num_holdout is None) == (holdout_names is None):
        raise ValueError('give exactly one of num_holdout and holdout_names')
    videos = ann['videos']
    if holdout_names is not None:
        by_name = {video['name']: video['id'] for video in videos}
        unknown = sorted(set(holdout_names) - set(by_name))
        if unknown:
            raise KeyError(f'videos {unknown} are not in the json '
                           f'(it has {len(videos)} videos)')
        held = {by_name[name] for name in holdout_names}
    else:
        if not 1 <= num_holdout < len(videos):
            raise ValueError(
                f'num_holdout must be in [1, {len(videos) - 1}] for a json '
                f'with {len(videos)} videos, got {num_holdout}')
        ids = sorted(video['id'] for video in videos)
        held = set(random.Random(seed).sample(ids, num_holdout))
    if len(held) == len(videos):
        raise ValueError('holding out every video leaves no training video')

    def part(keep_held: bool) -> Dict:
        out = {
            key: value
            for key, value in ann.items()
            if key not in ('videos', 'images', 'annotations')
        }
        for key in ('videos', 'images', 'annotations'):
            id_key = 'id' if key == 'videos' else 'video_id'
            out[key] = [
                item for item in ann.get(key, [])
                if (item[id_key] in held) == keep_held
            ]
        return out

    return part(False), part(True)
