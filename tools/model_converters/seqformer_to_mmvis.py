"""Convert a public SeqFormer checkpoint into an mmvis-msts checkpoint.

    python tools/model_converters/seqformer_to_mmvis.py IN.pth OUT.pth \
        [--config CONFIG] [--skip-classifier] [--partial]

``IN.pth`` is a checkpoint of the public SeqFormer code (``wjf5203/SeqFormer``,
also the layout of the MS-STS VIS release): its ``model`` entry (or the file
itself) is the state dict of ``SeqFormer(DeformableDETR(...))`` built with
``--masks --rel_coord --with_box_refine`` and a ResNet backbone. ``OUT.pth`` is
an mmengine checkpoint ``{'meta': ..., 'state_dict': ...}`` for the model of
``--config`` (default: the SeqFormer R-50 YouTube-VIS 2019 config) holding
only tensors, strings and lists, so it loads with torch's weights-only
unpickling (``load_from=OUT.pth``, ``tools/test.py CONFIG OUT.pth``).

Every SeqFormer key is either mapped (:data:`KEY_RULES`), or listed with the
reason it is dropped (:data:`UNUSED_RULES`, :data:`ALIAS_RULES`); any other
key is an error. The converted dict is checked against the state dict of the
model built from the config: every key must exist there with the same shape
and, unless ``--partial``, every model key must be filled.

Class logits: SeqFormer's YouTube-VIS models have ``num_classes + 2`` logits
where logit ``k`` is the category id ``k`` (ids start at 1), so rows
``1..num_classes`` become labels ``0..num_classes-1`` and the never-trained
rows 0 and ``num_classes + 1`` are dropped. ``--skip-classifier`` leaves the
class branches out (e.g. for COCO-pretrained weights with other categories);
together with ``--partial`` the result then initialises everything else.
"""
import argparse
import os.path as osp
import re
from argparse import Namespace
from collections import OrderedDict
from typing import Callable, Dict, List, Mapping, Optional, Tuple, Union

import torch
from torch import Tensor

from mmvis_msts.utils import load_checkpoint_weights_only

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_CONFIG = osp.join(REPO_ROOT, 'configs', 'seqformer',
                          'seqformer_r50_8xb1-12e_youtubevis2019.py')

# SeqFormer's input projections: levels 0..2 are the backbone stages (1x1
# conv + GN), later levels the stride-2 3x3 convs on the last stage
NUM_BACKBONE_LEVELS = 3
# SeqFormer's MaskHeadSmallConv layers -> MaskBranch convs (coarsest first)
MASK_BRANCH_CONVS = {
    'lay3': 'fuse_convs.0',  # on the stride-32 map
    'lay4': 'fuse_convs.1',  # after adding the stride-16 map
    'dcn': 'fuse_convs.2',  # after adding the stride-8 map (a plain conv)
    'lay1': 'out_convs.0',  # 256 -> 64
    'lay2': 'out_convs.1',  # 64 -> 8 mask-feature channels
}
CLASS_KEY = re.compile(r'track_head\.cls_branches\.\d+\.(weight|bias)')

_ENC = r'detr\.transformer\.encoder\.layers\.(\d+)\.'
_DEC = r'detr\.transformer\.decoder\.layers\.(\d+)\.'
_WB = r'(weight|bias)'


def _input_proj(match: re.Match) -> str:
    level, part, param = int(match[1]), match[2], match[3]
    module = 'conv' if part == '0' else 'gn'
    if level < NUM_BACKBONE_LEVELS:
        return f'neck.convs.{level}.{module}.{param}'
    return (f'neck.extra_convs.{level - NUM_BACKBONE_LEVELS}.{module}.'
            f'{param}')


def _mask_branch(match: re.Match) -> str:
    conv = MASK_BRANCH_CONVS[match[1]]
    return f'track_head.mask_head.branch.{conv}.{match[2]}'


# (SeqFormer key regex, mmvis-msts key template or function of the match);
# a key takes the first rule whose regex matches it whole
KEY_RULES: List[Tuple[str, Union[str, Callable[[re.Match], str]]]] = [
    # torchvision ResNet with FrozenBatchNorm2d -> mmdet ResNet (same names)
    (r'detr\.backbone\.0\.body\.((?:conv1|bn1|layer\d+)\..+)', r'backbone.\1'),
    # input projections -> ChannelMapper (1x1 convs + GN, extra 3x3 s2 conv)
    (r'detr\.input_proj\.(\d+)\.([01])\.' + _WB, _input_proj),
    (r'detr\.transformer\.level_embed', 'track_head.level_embed'),
    (r'detr\.query_embed\.weight', 'track_head.query_embedding.weight'),
    (r'detr\.transformer\.reference_points\.' + _WB,
     r'track_head.reference_points_fc.\1'),
    # encoder layers (see mmvis_msts/models/layers/seqformer_encoder.py)
    (_ENC + r'self_attn\.(sampling_offsets|attention_weights|value_proj|'
     r'output_proj)\.' + _WB, r'track_head.encoder.layers.\1.self_attn.\2.\3'),
    (_ENC + r'norm1\.' + _WB, r'track_head.encoder.layers.\1.norms.0.\2'),
    (_ENC + r'norm2\.' + _WB, r'track_head.encoder.layers.\1.norms.1.\2'),
    (_ENC + r'linear1\.' + _WB,
     r'track_head.encoder.layers.\1.ffn.layers.0.0.\2'),
    (_ENC + r'linear2\.' + _WB,
     r'track_head.encoder.layers.\1.ffn.layers.1.\2'),
    # decoder layers (see mmvis_msts/models/layers/seqformer_decoder.py)
    (_DEC + r'(self_attn|self_attn_box)\.(in_proj_weight|in_proj_bias|'
     r'out_proj\.weight|out_proj\.bias)',
     r'track_head.decoder.layers.\1.\2.attn.\3'),
    (_DEC + r'cross_attn\.(\w+)\.' + _WB,
     r'track_head.decoder.layers.\1.cross_attn.\2.\3'),
    (_DEC + r'norm2\.' + _WB, r'track_head.decoder.layers.\1.norms.0.\2'),
    (_DEC + r'norm1\.' + _WB, r'track_head.decoder.layers.\1.norms.1.\2'),
    (_DEC + r'norm3\.' + _WB, r'track_head.decoder.layers.\1.norms.2.\2'),
    (_DEC + r'norm2_box\.' + _WB,
     r'track_head.decoder.layers.\1.norms_box.0.\2'),
    (_DEC + r'norm1_box\.' + _WB,
     r'track_head.decoder.layers.\1.norms_box.1.\2'),
    (_DEC + r'norm3_box\.' + _WB,
     r'track_head.decoder.layers.\1.norms_box.2.\2'),
    (_DEC + r'linear1\.' + _WB,
     r'track_head.decoder.layers.\1.ffn.layers.0.0.\2'),
    (_DEC + r'linear2\.' + _WB,
     r'track_head.decoder.layers.\1.ffn.layers.1.\2'),
    (_DEC + r'linear1_box\.' + _WB,
     r'track_head.decoder.layers.\1.ffn_box.layers.0.0.\2'),
    (_DEC + r'linear2_box\.' + _WB,
     r'track_head.decoder.layers.\1.ffn_box.layers.1.\2'),
    (_DEC + r'time_attention_weights\.' + _WB,
     r'track_head.decoder.layers.\1.time_attention_weights.\2'),
    # per-layer prediction branches
    (r'detr\.class_embed\.(\d+)\.' + _WB, r'track_head.cls_branches.\1.\2'),
    (r'detr\.bbox_embed\.(\d+)\.layers\.(\d+)\.' + _WB,
     r'track_head.reg_branches.\1.layers.\2.\3'),
    # dynamic mask head
    (r'controller\.layers\.(\d+)\.' + _WB,
     r'track_head.mask_head.controller.layers.\1.\2'),
    (r'mask_head\.(lay[1-4]|dcn)\.' + _WB, _mask_branch),
]

# SeqFormer keys that its forward never uses, with the reason
UNUSED_RULES: List[Tuple[str, str]] = [
    (_ENC + r'self_attn\.output_proj_box\.' + _WB,
     "the encoder's MSDeformAttn runs in 'encode' mode, whose forward "
     'applies only output_proj'),
]

# SeqFormer keys that hold the same tensors as another key (checked equal)
ALIAS_RULES: List[Tuple[str, str, str]] = [
    (r'detr\.transformer\.decoder\.bbox_embed\.(.+)', r'detr.bbox_embed.\1',
     'with_box_refine shares the box MLPs between the decoder and '
     'detr.bbox_embed'),
]

# keys any SeqFormer VIS checkpoint has (for a clear "not SeqFormer" error)
REQUIRED_PREFIXES = ('detr.backbone.0.body.', 'detr.transformer.encoder.',
                     'detr.transformer.decoder.', 'detr.input_proj.',
                     'detr.class_embed.', 'detr.bbox_embed.', 'controller.',
                     'mask_head.')


class ConversionError(ValueError):
    """A checkpoint that cannot be converted, with the reason."""


def _match(rules, key: str) -> Optional[Tuple[re.Match, tuple]]:
    for rule in rules:
        match = re.fullmatch(rule[0], key)
        if match is not None:
            return match, rule
    return None


def load_seqformer_state_dict(path: str) -> Dict[str, Tensor]:
    """Read a SeqFormer checkpoint with weights-only unpickling.

    Args:
        path (str): A ``.pth`` file with the state dict under ``model`` (as
            released and as SeqFormer's ``main.py`` saves it; the optional
            ``args`` Namespace is accepted) or a bare state dict.

    Returns:
        dict[str, Tensor]: The SeqFormer state dict (checked by
        :func:`check_is_seqformer`).
    """
    if not osp.isfile(path):
        raise ConversionError(f'{path} does not exist')
    try:
        # argparse.Namespace: SeqFormer's main.py stores its args
        with torch.serialization.safe_globals([Namespace]):
            ckpt = load_checkpoint_weights_only(path)
    except Exception as err:
        raise ConversionError(
            f'{path} is not a weights-only loadable torch checkpoint: '
            f'{type(err).__name__}: {err}') from err
    if not isinstance(ckpt, Mapping):
        raise ConversionError(f'{path} holds a {type(ckpt).__name__}, not a '
                              'SeqFormer checkpoint dict')
    if 'state_dict' in ckpt and 'model' not in ckpt:
        raise ConversionError(
            f'{path} has a "state_dict" entry: it looks like an mmengine '
            'checkpoint already, not a SeqFormer one (key "model")')
    state_dict = ckpt.get('model', ckpt)
    if not isinstance(state_dict, Mapping) or not all(
            isinstance(v, Tensor) for v in state_dict.values()):
        raise ConversionError(f'{path}: "model" is not a state dict of '
                              'tensors')
    check_is_seqformer(state_dict, path)
    return dict(state_dict)


def check_is_seqformer(state_dict: Mapping[str, Tensor],
                       source: str = 'checkpoint') -> None:
    """Raise unless the state dict has every part of a SeqFormer VIS model.

    Args:
        state_dict (Mapping[str, Tensor]): Candidate SeqFormer state dict.
        source (str): Name for the error message.
    """
    missing = [
        p for p in REQUIRED_PREFIXES
        if not any(k.startswith(p) for k in state_dict)
    ]
    if len(missing) == len(REQUIRED_PREFIXES):
        sample = ', '.join(sorted(state_dict)[:3]) or 'no keys'
        raise ConversionError(
            f'{source} is not a SeqFormer checkpoint: none of its keys start '
            f'with {", ".join(REQUIRED_PREFIXES)} (found {sample})')
    if missing:
        hint = ' (trained without --masks?)' if 'controller.' in missing \
            else ''
        raise ConversionError(f'{source} lacks the SeqFormer parts '
                              f'{", ".join(missing)}{hint}')


def convert(state_dict: Mapping[str, Tensor],
            num_classes: int = 40,
            skip_classifier: bool = False) -> Tuple[OrderedDict, dict]:
    """Map a SeqFormer state dict to mmvis-msts keys.

    Args:
        state_dict (Mapping[str, Tensor]): SeqFormer state dict.
        num_classes (int): Classes of the target model; SeqFormer logit rows
            ``1..num_classes`` become labels ``0..num_classes-1``. Defaults
            to 40 (YouTube-VIS).
        skip_classifier (bool): Leave the class branches out. Defaults to
            False.

    Returns:
        tuple[OrderedDict, dict]: The converted state dict and a report:
        ``sources`` (mmvis key -> SeqFormer key), ``unused`` and ``aliases``
        (SeqFormer key -> reason), ``added`` (mmvis keys with no SeqFormer
        counterpart, the BN ``num_batches_tracked`` counters) and
        ``class_rows`` (how the class logits were mapped).
    """
    check_is_seqformer(state_dict)
    converted: 'OrderedDict[str, Tensor]' = OrderedDict()
    report = dict(
        sources={},
        unused={},
        aliases={},
        added=[],
        class_rows='skipped' if skip_classifier else
        f'SeqFormer logit k -> label k-1 for k = 1..{num_classes}')
    unknown = []
    for key, value in state_dict.items():
        found = _match(KEY_RULES, key)
        if found is not None:
            match, (_, target) = found
            new_key = target(match) if callable(target) else \
                match.expand(target)
            if CLASS_KEY.fullmatch(new_key):
                if skip_classifier:
                    report['unused'][key] = 'skipped (--skip-classifier)'
                    continue
                value = _class_rows(key, value, num_classes)
            converted[new_key] = value
            report['sources'][new_key] = key
            if new_key.startswith('backbone.') and \
                    new_key.endswith('.running_mean'):
                # mmdet's BatchNorm2d has a counter FrozenBatchNorm2d lacks
                counter = new_key[:-len('running_mean')] + \
                    'num_batches_tracked'
                converted[counter] = torch.tensor(0, dtype=torch.long)
                report['added'].append(counter)
            continue
        found = _match(UNUSED_RULES, key)
        if found is not None:
            report['unused'][key] = found[1][1]
            continue
        found = _match(ALIAS_RULES, key)
        if found is not None:
            match, (_, original, reason) = found
            original = match.expand(original)
            if original not in state_dict or not torch.equal(
                    state_dict[original], value):
                raise ConversionError(
                    f'{key} should equal {original} ({reason}) but ' +
                    ('that key is missing' if original not in
                     state_dict else 'the tensors differ'))
            report['aliases'][key] = f'same tensor as {original}: {reason}'
            continue
        unknown.append(key)
    if unknown:
        raise ConversionError(
            f'{len(unknown)} SeqFormer key(s) match no conversion rule '
            f'(not an R-50/R-101 SeqFormer VIS checkpoint?): '
            f'{", ".join(unknown[:10])}')
    return converted, report


def _class_rows(key: str, weight: Tensor, num_classes: int) -> Tensor:
    """Rows 1..num_classes of a SeqFormer class-logit weight or bias."""
    if weight.size(0) < num_classes + 1:
        raise ConversionError(
            f'{key} has {weight.size(0)} logits; converting to {num_classes} '
            f'classes needs at least {num_classes + 1} (logit k = category '
            'id k, ids from 1); use --skip-classifier for other label sets')
    return weight[1:num_classes + 1].clone()


def check_against_model(converted: Mapping[str, Tensor],
                        model_state: Mapping[str, Tensor],
                        sources: Mapping[str, str],
                        partial: bool = False) -> List[str]:
    """Check keys and shapes against a target model's state dict.

    Args:
        converted (Mapping[str, Tensor]): Output of :func:`convert`.
        model_state (Mapping[str, Tensor]): ``model.state_dict()``.
        sources (Mapping[str, str]): mmvis key -> SeqFormer key.
        partial (bool): Allow model keys that the checkpoint does not fill.
            Defaults to False.

    Returns:
        list[str]: Model keys left unfilled (empty unless ``partial``).
    """

    def origin(key):
        return f' (from SeqFormer {sources[key]})' if key in sources else ''

    extra = [k for k in converted if k not in model_state]
    if extra:
        raise ConversionError('converted keys missing from the model: ' +
                              ', '.join(f'{k}{origin(k)}' for k in extra[:10]))
    for key, value in converted.items():
        expected = tuple(model_state[key].shape)
        if tuple(value.shape) != expected:
            raise ConversionError(
                f'shape mismatch for {key}{origin(key)}: checkpoint '
                f'{tuple(value.shape)} vs model {expected}')
    unfilled = [k for k in model_state if k not in converted]
    if unfilled and not partial:
        raise ConversionError(
            f'{len(unfilled)} model key(s) have no SeqFormer counterpart '
            f'(pass --partial to keep their initialisation): '
            f'{", ".join(unfilled[:10])}')
    return unfilled


def build_model(config: str, cfg_options: Optional[dict] = None):
    """Build the model of a config on CPU with no pretrained download.

    Args:
        config (str): Config path.
        cfg_options (dict, optional): Overrides merged into the config.

    Returns:
        nn.Module: The model (``init_weights`` not called).
    """
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config

    import mmvis_msts  # noqa: F401  (registers the project's modules)
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.model.pop('init_cfg', None)
    cfg.model.backbone.init_cfg = None
    return MODELS.build(cfg.model)


def convert_for_model(state_dict: Mapping[str, Tensor],
                      model: torch.nn.Module,
                      skip_classifier: bool = False,
                      partial: bool = False) -> Tuple[OrderedDict, dict]:
    """Convert a SeqFormer state dict for ``model`` and check it fits.

    Args:
        state_dict (Mapping[str, Tensor]): SeqFormer state dict.
        model (nn.Module): The target ``MSSTSVIS`` model.
        skip_classifier (bool): See :func:`convert`. Defaults to False.
        partial (bool): See :func:`check_against_model`. Defaults to False.

    Returns:
        tuple[OrderedDict, dict]: The converted state dict and the report of
        :func:`convert` plus ``unfilled`` (model keys left unfilled).
    """
    num_classes = model.track_head.num_classes
    converted, report = convert(state_dict, num_classes, skip_classifier)
    report['unfilled'] = check_against_model(converted, model.state_dict(),
                                             report['sources'], partial)
    return converted, report


def save_checkpoint(converted: Mapping[str, Tensor], report: dict,
                    out_file: str, source: str, config: str) -> None:
    """Save ``{'meta': ..., 'state_dict': ...}`` (weights-only loadable).

    Args:
        converted (Mapping[str, Tensor]): Converted state dict.
        report (dict): Report of :func:`convert_for_model`.
        out_file (str): Output path; its directory must exist.
        source (str): Name of the SeqFormer checkpoint, for the meta.
        config (str): Config path, for the meta.
    """
    out_dir = osp.dirname(osp.abspath(out_file))
    if not osp.isdir(out_dir):
        raise ConversionError(f'output directory {out_dir} does not exist')
    if osp.abspath(config).startswith(REPO_ROOT + osp.sep):
        config = osp.relpath(osp.abspath(config), REPO_ROOT)
    # only str / list values: torch's weights-only unpickler accepts them
    meta = dict(
        converted_from=f'SeqFormer checkpoint {osp.basename(source)}',
        config=config,
        class_rows=report['class_rows'],
        unused_seqformer_keys=sorted(report['unused']),
        aliased_seqformer_keys=sorted(report['aliases']),
        unfilled_model_keys=list(report['unfilled']))
    torch.save(dict(meta=meta, state_dict=OrderedDict(converted)), out_file)


def convert_file(in_file: str,
                 out_file: str,
                 config: str = DEFAULT_CONFIG,
                 skip_classifier: bool = False,
                 partial: bool = False) -> dict:
    """Convert ``in_file`` for the model of ``config`` and save ``out_file``.

    Returns:
        dict: The report of :func:`convert_for_model`.
    """
    seqformer = load_seqformer_state_dict(in_file)
    model = build_model(config)
    converted, report = convert_for_model(seqformer, model, skip_classifier,
                                          partial)
    save_checkpoint(converted, report, out_file, in_file, config)
    return report


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert a public SeqFormer checkpoint to mmvis-msts')
    parser.add_argument('in_file', help='SeqFormer checkpoint (.pth)')
    parser.add_argument('out_file', help='output mmengine checkpoint (.pth)')
    parser.add_argument(
        '--config',
        default=DEFAULT_CONFIG,
        help='config whose model the checkpoint must fit (default: '
        'configs/seqformer/seqformer_r50_8xb1-12e_youtubevis2019.py)')
    parser.add_argument(
        '--skip-classifier',
        action='store_true',
        help='leave the class branches out (other label sets)')
    parser.add_argument(
        '--partial',
        action='store_true',
        help='allow model keys with no SeqFormer counterpart (e.g. the '
        'MS-STS modules, or the class branches with --skip-classifier)')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    try:
        report = convert_file(args.in_file, args.out_file, args.config,
                              args.skip_classifier, args.partial)
    except ConversionError as err:
        raise SystemExit(f'error: {err}')
    print(f'converted {len(report["sources"])} SeqFormer tensors, added '
          f'{len(report["added"])} BN counters, dropped '
          f'{len(report["unused"])} unused and {len(report["aliases"])} '
          f'aliased keys -> {args.out_file}')
    if report['unfilled']:
        print(f'{len(report["unfilled"])} model keys keep their '
              f'initialisation: {", ".join(report["unfilled"][:10])}' +
              (' ...' if len(report['unfilled']) > 10 else ''))


if __name__ == '__main__':
    main()
