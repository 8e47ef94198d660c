"""Checks of a VIS annotation dict, in either of two formats.

* ``'cocovid'``: the COCO-video json that :class:`BaseVideoDataset` loads
  (``videos``, ``images`` with ``video_id`` / ``frame_id``,
  ``annotations`` with ``instance_id``, ``categories``).
* ``'raw'``: raw YouTube-VIS / OVIS json (``videos`` with ``file_names``,
  one ``annotations`` entry per object track with per-frame
  ``segmentations``, ``bboxes`` and ``areas`` lists, ``categories``),
  the input of ``tools/dataset_converters/ytvis_raw_to_cocovid.py``.

All checks read the dict only (no frame files); their cost is linear in
the entries, plus about 30 ns per character of the compressed RLE strings.
"""
import json
from collections import Counter
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from mmengine import fileio

from .frames import FrameRef
from .masks import (is_int, is_number, polygon_error, rle_error,
                    rle_string_totals)
from .problems import FATAL, WARNING, EntryRef, Problem, VISDatasetError

FORMATS = ('cocovid', 'raw')
#: Pixels a box may reach past the frame border (rounding of polygon or
#: resized boxes) before it is an error.
BOX_TOLERANCE = 1.0

Field = Tuple[Callable[[Any], bool], str]


def _positive_int(value: Any) -> bool:
    return is_int(value) and value > 0


def _name(value: Any) -> bool:
    return isinstance(value, str) and value != ''


def _file_names(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        _name(v) for v in value)


_ID: Field = (is_int, 'an integer')
_SIZE: Field = (_positive_int, 'a positive integer')
_LIST: Field = (lambda v: isinstance(v, list), 'a list')
_FLAG: Field = (lambda v: is_int(v) and v in
                (0, 1) or isinstance(v, bool), '0 or 1')
CATEGORY_FIELDS: Dict[str, Field] = dict(
    id=_ID, name=(_name, 'a non-empty string'))
VIDEO_FIELDS: Dict[str, Field] = dict(id=_ID, width=_SIZE, height=_SIZE)
RAW_VIDEO_FIELDS: Dict[str, Field] = dict(
    VIDEO_FIELDS, file_names=(_file_names, 'a non-empty list of file names'))
IMAGE_FIELDS: Dict[str, Field] = dict(
    id=_ID,
    video_id=_ID,
    frame_id=(lambda v: is_int(v) and v >= 0, 'an integer >= 0'),
    file_name=(_name, 'a non-empty string'),
    height=_SIZE,
    width=_SIZE)
ANNOTATION_FIELDS: Dict[str, Field] = dict(
    id=_ID,
    image_id=_ID,
    video_id=_ID,
    category_id=_ID,
    instance_id=(_positive_int,
                 'a positive integer (mmdet reads 0 as "no instance id")'),
    bbox=_LIST,
    segmentation=(lambda v: isinstance(v, (dict, list)),
                  'an RLE dict or a list of polygons'),
    area=(lambda v: is_number(v) and v > 0,
          'a number > 0 (mmdet drops the others)'))
RAW_TRACK_FIELDS: Dict[str, Field] = dict(
    id=_ID,
    video_id=_ID,
    category_id=_ID,
    segmentations=_LIST,
    bboxes=_LIST,
    areas=_LIST)
OPTIONAL_FIELDS: Dict[str, Field] = dict(iscrowd=_FLAG)


def load_json(path: str, backend_args: Optional[dict] = None) -> Any:
    """Read a json file; a malformed or truncated one raises an error that
    names the file and the place.

    Args:
        path (str): The file (local, or any mmengine backend).
        backend_args (dict, optional): mmengine file backend arguments.
            Defaults to None.

    Returns:
        Any: The parsed content.

    Raises:
        FileNotFoundError: If the file does not exist.
        VISDatasetError: If it is not valid json (one ``invalid_json``
            problem).
    """
    if not fileio.exists(path, backend_args=backend_args):
        raise FileNotFoundError(f'{path} does not exist')
    text = fileio.get_text(path, backend_args=backend_args)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        end = text.rstrip()
        # a cut file stops inside a value (the error may point at the
        # value's start) or before the closing bracket
        truncated = error.pos >= len(end) or not end.endswith(('}', ']'))
        message = (f'not valid json ({error.msg}: line {error.lineno}, '
                   f'column {error.colno})' +
                   ('; the file ends early: truncated?' if truncated else ''))
        problem = Problem('invalid_json', FATAL, path, message)
        raise VISDatasetError(str(problem), [problem]) from None


def detect_format(ann: Any) -> str:
    """``'raw'`` for raw YouTube-VIS json, else ``'cocovid'``.

    A file is raw when it has no ``images`` list and a video has
    ``file_names``.

    Args:
        ann (Any): The loaded json.

    Returns:
        str: One of :data:`FORMATS`.
    """
    if isinstance(ann, dict) and 'images' not in ann and isinstance(
            ann.get('videos'), list):
        if any(
                isinstance(v, dict) and 'file_names' in v
                for v in ann['videos']):
            return 'raw'
    return 'cocovid'


def check_annotations(ann: Any,
                      source: str,
                      classes: Optional[Sequence[str]] = None,
                      test_mode: bool = False,
                      fmt: Optional[str] = None) -> List[Problem]:
    """Every problem of an annotation dict, in one pass.

    Args:
        ann (Any): The loaded json.
        source (str): The file name, for the messages.
        classes (Sequence[str], optional): The dataset's class names; the
            categories must hold them in this order (labels follow the
            file's category order). None skips the class checks. Defaults
            to None.
        test_mode (bool): A test split: ``annotations`` may be missing or
            empty. Defaults to False.
        fmt (str, optional): One of :data:`FORMATS`; None detects it with
            :func:`detect_format`. Defaults to None.

    Returns:
        list[Problem]: The problems, fatal ones and warnings.
    """
    fmt = fmt or detect_format(ann)
    if fmt not in FORMATS:
        raise ValueError(f'fmt must be one of {FORMATS}, got {fmt!r}')
    checker = _Checker(source)
    if checker.structure(ann, fmt, test_mode):
        checker.categories(ann, classes)
        if fmt == 'raw':
            checker.raw(ann)
        else:
            checker.cocovid(ann)
    return checker.problems


def drop_faulty(ann: dict, problems: Sequence[Problem]) -> dict:
    """The COCO-video dict without the entries of fatal problems.

    Removes each fatal problem's :attr:`Problem.drop` entry, then the
    frames of removed videos and the annotations of removed frames and
    categories.

    Args:
        ann (dict): A COCO-video annotation dict without problems of the
            whole file.
        problems (Sequence[Problem]): Its problems.

    Returns:
        dict: A new dict (the entries themselves are shared).
    """
    dropped = {
        key: {p.drop[1]
              for p in problems if p.fatal and p.drop[0] == key}
        for key in ('categories', 'videos', 'images', 'annotations')
    }
    out = dict(ann)
    for key, indices in dropped.items():
        if key in ann:
            out[key] = [e for i, e in enumerate(ann[key]) if i not in indices]
    video_ids = {v['id'] for v in out['videos']}
    out['images'] = [i for i in out['images'] if i['video_id'] in video_ids]
    if 'annotations' in out:
        image_ids = {i['id'] for i in out['images']}
        category_ids = {c['id'] for c in out['categories']}
        out['annotations'] = [
            a for a in out['annotations']
            if a['image_id'] in image_ids and a['category_id'] in category_ids
        ]
    return out


def frame_refs(ann: dict, fmt: Optional[str] = None) -> List[FrameRef]:
    """The frames an annotation dict lists, for :func:`check_frames`.

    Entries with missing or wrong-typed fields are left out (their
    problems come from :func:`check_annotations`).

    Args:
        ann (dict): The loaded json, without problems of the whole file.
        fmt (str, optional): One of :data:`FORMATS`; None detects it.
            Defaults to None.

    Returns:
        list[FrameRef]: One per frame; COCO-video frames carry their
        ``('images', index)`` entry for non-strict mode.
    """
    if (fmt or detect_format(ann)) == 'raw':
        return [
            FrameRef(name, video['height'], video['width'], video['id'])
            for video in ann['videos']
            if _field_errors(video, RAW_VIDEO_FIELDS) is None
            for name in video['file_names']
        ]
    return [
        FrameRef(image['file_name'], image['height'], image['width'],
                 image['video_id'], ('images', i))
        for i, image in enumerate(ann['images'])
        if _field_errors(image, IMAGE_FIELDS) is None
    ]


def _field_errors(entry: Any, fields: Dict[str, Field]) -> Optional[str]:
    """What is missing or wrong-typed in an entry, or None."""
    if not isinstance(entry, dict):
        return f'is a {type(entry).__name__}, not an object'
    errors = []
    for key, (valid, expected) in fields.items():
        if key not in entry:
            errors.append(f'has no {key!r}')
        elif not valid(entry[key]):
            errors.append(f'has {key}={_short(entry[key])}, not {expected}')
    for key, (valid, expected) in OPTIONAL_FIELDS.items():
        if key in entry and not valid(entry[key]):
            errors.append(f'has {key}={_short(entry[key])}, not {expected}')
    return '; '.join(errors) or None


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + '...'


def _entry_id(entry: Any) -> Optional[int]:
    """The entry's id if it is an integer (for the messages)."""
    value = entry.get('id') if isinstance(entry, dict) else None
    return value if is_int(value) else None


class _Checker:
    """Walks an annotation dict and collects its problems."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: List[Problem] = []
        self.category_ids: set = set()  # valid and in the classes
        self.all_category_ids: set = set()  # every id in the file
        # compressed RLEs, checked together: (counts, pixels, where)
        self._rles: List[Tuple[str, int, dict]] = []

    def add(self,
            kind: str,
            message: str,
            severity: str = FATAL,
            drop: Optional[EntryRef] = None,
            **where) -> None:
        self.problems.append(
            Problem(kind, severity, self.source, message, drop=drop, **where))

    def structure(self, ann: Any, fmt: str, test_mode: bool) -> bool:
        """Check the top level; False if nothing else can be checked."""
        if not isinstance(ann, dict):
            self.add(
                'bad_structure',
                f'the top level is a {type(ann).__name__}, not an '
                'object with videos, annotations and categories')
            return False
        required = ['videos', 'categories']
        if fmt == 'cocovid':
            required.append('images')
        if not test_mode:
            required.append('annotations')
        for key in ('videos', 'images', 'annotations', 'categories'):
            if key not in ann:
                if key in required:
                    self.add(
                        'bad_structure', f'has no {key!r} list' +
                        ('' if key != 'annotations' else
                         ' (only a test split may have none)'))
            elif not isinstance(ann[key], list):
                self.add(
                    'bad_structure', f'{key!r} is a '
                    f'{type(ann[key]).__name__}, not a list')
        if self.problems:
            return False
        if not ann.get('annotations'):
            self.add(
                'no_annotations' if test_mode else 'bad_structure',
                'has no annotations' +
                (': a test split, usable with format_only=True'
                 if test_mode else ', but a training set needs them'),
                WARNING if test_mode else FATAL)
        return True

    def categories(self, ann: dict, classes: Optional[Sequence[str]]) -> None:
        """Check the categories and that they match ``classes``."""
        names: Dict[str, int] = {}  # name -> index of its entry
        for i, cat in enumerate(ann['categories']):
            error = _field_errors(cat, CATEGORY_FIELDS)
            self.all_category_ids.add(_entry_id(cat))
            if error:
                self.add(
                    'bad_category',
                    f'categories[{i}] {error}',
                    drop=('categories', i))
            elif cat['id'] in self.category_ids or cat['name'] in names:
                self.add(
                    'duplicate_category',
                    f'categories[{i}] (id {cat["id"]}, {cat["name"]!r}) '
                    'repeats an id or a name of an earlier category',
                    drop=('categories', i))
            else:
                self.category_ids.add(cat['id'])
                names[cat['name']] = i
        if classes is None:
            return
        missing = [c for c in classes if c not in names]
        in_file_order = [n for n in names if n in classes]
        if missing:
            self.add(
                'class_mismatch',
                f'has no category for the classes {tuple(missing)} '
                f'(categories: {tuple(names)}); labels would shift. Pass '
                'the classes of the file as metainfo=dict(classes=...)')
        elif in_file_order != list(classes):
            self.add(
                'class_mismatch',
                f'lists the categories in the order {tuple(in_file_order)}'
                f', the classes are {tuple(classes)}: labels follow the '
                'file\'s order, so classes would be misnamed')
        uses = Counter(a['category_id'] for a in ann.get('annotations') or []
                       if isinstance(a, dict) and is_int(a.get('category_id')))
        for name, i in names.items():
            if name not in classes:
                cat_id = ann['categories'][i]['id']
                self.category_ids.discard(cat_id)
                self.add(
                    'category_not_in_classes',
                    f'category {cat_id} {name!r} is not in the classes: '
                    f'its {uses[cat_id]} annotations would be ignored',
                    drop=('categories', i))

    def _videos(self, entries: list,
                fields: Dict[str, Field]) -> Tuple[Dict[int, dict], set]:
        """Valid videos by id, and every video id of the file."""
        videos: Dict[int, dict] = {}
        all_ids = set()
        for i, video in enumerate(entries):
            video_id = _entry_id(video)
            all_ids.add(video_id)
            error = _field_errors(video, fields)
            if error:
                self.add(
                    'bad_video',
                    f'videos[{i}] {error}',
                    drop=('videos', i),
                    video_id=video_id)
            elif video_id in videos:
                self.add(
                    'duplicate_video_id',
                    f'videos[{i}] repeats the id of an earlier video',
                    drop=('videos', i),
                    video_id=video_id)
            else:
                videos[video_id] = dict(video, index=i)
        return videos, all_ids

    def _entry(self, entry: Any, i: int, fields: Dict[str, Field], seen: set,
               kinds: Tuple[str, str], key: str) -> Optional[dict]:
        """Check an annotation or image entry's fields and id uniqueness;
        its location for the messages, or None if it is unusable."""
        entry_id = _entry_id(entry)
        where = dict(drop=(key, i))
        if key == 'annotations':
            where['annotation_id'] = entry_id
        else:
            where['frame'] = entry.get('file_name') if isinstance(
                entry, dict) and _name(entry.get('file_name')) else None
        if isinstance(entry, dict) and is_int(entry.get('video_id')):
            where['video_id'] = entry['video_id']
        error = _field_errors(entry, fields)
        if error:
            self.add(kinds[0], f'{key}[{i}] {error}', **where)
            return None
        if entry_id in seen:
            self.add(
                kinds[1],
                f'{key}[{i}] repeats the id {entry_id} of an earlier '
                'entry', **where)
            return None
        seen.add(entry_id)
        return where

    def cocovid(self, ann: dict) -> None:
        """Check videos, frames and annotations of a COCO-video dict."""
        videos, all_video_ids = self._videos(ann['videos'], VIDEO_FIELDS)
        images: Dict[int, dict] = {}
        seen: set = set()
        frame_ids: Dict[int, List[int]] = {}
        for i, image in enumerate(ann['images']):
            where = self._entry(image, i, IMAGE_FIELDS, seen,
                                ('bad_image', 'duplicate_image_id'), 'images')
            if where is None:
                continue
            video = videos.get(image['video_id'])
            if video is None:
                if image['video_id'] not in all_video_ids:
                    self.add(
                        'unknown_video', f'images[{i}] has video_id '
                        f'{image["video_id"]}, which is not in '
                        "'videos'", **where)
                continue
            size = (image['height'], image['width'])
            if size != (video['height'], video['width']):
                self.add(
                    'frame_size_mismatch',
                    f'the frame is {size[0]}x{size[1]} (HxW) in '
                    f"'images', its video {video['height']}x"
                    f"{video['width']}: frames of one video must have one "
                    'size', **where)
                continue
            images[image['id']] = image
            frame_ids.setdefault(image['video_id'],
                                 []).append(image['frame_id'])
        for video_id, ids in frame_ids.items():
            if any(b <= a for a, b in zip(ids, ids[1:])):
                self.add(
                    'frame_order',
                    f'frame_ids {_short(ids)} do not increase in the order '
                    "of 'images', which is the order mmdet plays them in",
                    drop=('videos', videos[video_id]['index']),
                    video_id=video_id)
        all_image_ids = {_entry_id(e) for e in ann['images']}
        annotated = Counter()
        seen = set()
        for i, anno in enumerate(ann.get('annotations') or []):
            where = self._entry(anno, i, ANNOTATION_FIELDS, seen,
                                ('bad_annotation', 'duplicate_annotation_id'),
                                'annotations')
            if where is None:
                continue
            image = images.get(anno['image_id'])
            if image is None:
                if anno['image_id'] not in all_image_ids:
                    self.add(
                        'unknown_image',
                        f'image_id {anno["image_id"]} is not in '
                        "'images'", **where)
                continue
            where['frame'] = image['file_name']
            if anno['video_id'] != image['video_id']:
                if anno['video_id'] in all_video_ids:
                    kind, fault = 'video_mismatch', 'another video'
                else:
                    kind, fault = 'unknown_video', "not in 'videos'"
                self.add(
                    kind, f'video_id {anno["video_id"]} is {fault}: its '
                    f'frame is in video {image["video_id"]}', **where)
                continue
            if self._category(anno['category_id'], where) and self._object(
                    anno['bbox'], anno['segmentation'], image, where):
                annotated[anno['video_id']] += 1
        self._check_rles()
        self._video_warnings(videos,
                             Counter(i['video_id'] for i in images.values()),
                             annotated, bool(ann.get('annotations')))

    def raw(self, raw: dict) -> None:
        """Check the videos and object tracks of a raw YouTube-VIS dict."""
        videos, all_video_ids = self._videos(raw['videos'], RAW_VIDEO_FIELDS)
        annotated = Counter()
        seen: set = set()
        for i, track in enumerate(raw.get('annotations') or []):
            where = self._entry(track, i, RAW_TRACK_FIELDS, seen,
                                ('bad_annotation', 'duplicate_annotation_id'),
                                'annotations')
            if where is None:
                continue
            video = videos.get(track['video_id'])
            if video is None:
                if track['video_id'] not in all_video_ids:
                    self.add(
                        'unknown_video',
                        f'video_id {track["video_id"]} is not in '
                        "'videos'", **where)
                continue
            file_names = video['file_names']
            lengths = {
                key: len(track[key])
                for key in ('segmentations', 'bboxes', 'areas')
            }
            if set(lengths.values()) != {len(file_names)}:
                self.add(
                    'segmentation_length',
                    ', '.join(f'{n} {key}' for key, n in lengths.items()) +
                    f' for the {len(file_names)} frames of the video', **where)
                continue
            if not self._category(track['category_id'], where):
                continue
            ok = True
            for name, mask, box, area in zip(file_names,
                                             track['segmentations'],
                                             track['bboxes'], track['areas']):
                if mask is None and box is None:
                    continue
                at = dict(where, frame=name)
                if mask is None or box is None or not (is_number(area)
                                                       and area > 0):
                    self.add(
                        'bad_annotation',
                        f'has segmentation={_short(mask, 20)}, '
                        f'bbox={_short(box)}, area={_short(area)}: a frame '
                        'needs all three (area > 0) or none', **at)
                    ok = False
                else:
                    ok = self._object(box, mask, video, at) and ok
            if ok:
                annotated[track['video_id']] += 1
        self._check_rles()
        frames = {
            video_id: len(v['file_names'])
            for video_id, v in videos.items()
        }
        self._video_warnings(videos, frames, annotated,
                             bool(raw.get('annotations')))

    def _category(self, category_id: int, where: dict) -> bool:
        """Whether an object's category is usable; says so if it is not in
        the file (categories dropped for their own problems are not
        repeated)."""
        if category_id in self.category_ids:
            return True
        if category_id not in self.all_category_ids:
            self.add('unknown_category',
                     f"category_id {category_id} is not in 'categories'",
                     **where)
        return False

    def _object(self, box: Any, mask: Any, frame: dict, where: dict) -> bool:
        """Check an object's box and mask in a frame (``height`` / ``width``
        of ``frame``); False on a problem (compressed RLEs come later)."""
        height, width = frame['height'], frame['width']
        fault = _box_fault(box, height, width)
        if fault:
            self.add(*fault, **where)
            return False
        if isinstance(mask, dict):
            error = rle_error(mask, height, width)
            if error is None and isinstance(mask['counts'], str):
                self._rles.append((mask['counts'], height * width, where))
        elif isinstance(mask, list):
            error = polygon_error(mask)
        else:
            error = (f'the segmentation is a {type(mask).__name__}, not an '
                     'RLE dict or a list of polygons')
        if error:
            self.add('bad_segmentation', error, **where)
        return error is None

    def _check_rles(self) -> None:
        """Check the pixel totals of the collected compressed RLEs."""
        totals = rle_string_totals([counts for counts, _, _ in self._rles])
        for (_, pixels, where), total in zip(self._rles, totals):
            if total < 0:
                self.add(
                    'bad_segmentation',
                    'the RLE counts string is malformed (a character '
                    "outside '0'..'o', or it ends inside a run)", **where)
            elif total != pixels:
                self.add(
                    'bad_segmentation',
                    f'the RLE runs cover {total} pixels, not the {pixels} '
                    'of the frame: truncated or corrupt counts', **where)
        self._rles = []

    def _video_warnings(self, videos: Dict[int, dict], frames: Dict[int, int],
                        annotated: Dict[int,
                                        int], has_annotations: bool) -> None:
        """Warn about videos without frames, of one frame, or without
        annotations (only said when the file has annotations)."""
        for video_id, video in videos.items():
            where = dict(video_id=video_id)
            count = frames.get(video_id, 0)
            if count == 0:
                self.add('video_without_frames',
                         'the video has no frames: mmdet never sees it',
                         WARNING, **where)
            elif count == 1:
                self.add(
                    'one_frame_video', 'the video has one frame: every '
                    'clip repeats it (no motion to learn from)', WARNING,
                    **where)
            if has_annotations and count and not annotated.get(video_id):
                self.add(
                    'video_without_annotations', 'the video has no valid '
                    'annotations: kept for testing, left out of training',
                    WARNING, **where)


def _box_fault(box: Any, height: int, width: int) -> Optional[Tuple[str, str]]:
    """(kind, message) of a bad [x, y, w, h] box in an HxW frame, or None.
    """
    if not (isinstance(box, list) and len(box) == 4
            and all(is_number(v) for v in box)):
        return 'bad_box', f'bbox {_short(box)} is not 4 numbers [x, y, w, h]'
    x, y, w, h = box
    if w <= 0 or h <= 0:
        return 'bad_box', f'bbox {box} is empty (w or h <= 0)'
    tol = BOX_TOLERANCE
    if x < -tol or y < -tol or x + w > width + tol or y + h > height + tol:
        return ('box_outside_frame',
                f'bbox {box} (x, y, w, h) reaches outside the '
                f'{height}x{width} (HxW) frame')
    return None
