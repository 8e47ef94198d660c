"""The head's predictions as the flat outputs of an exported graph.

An exported graph computes ``MSSTSVIS.predict_head_outputs`` for one clip
(B = 1) and returns the tensor fields of :class:`VISHeadOutputs` as its
outputs; the integer fields (the strides) travel in the file's metadata.
Both the export and the onnxruntime backend go through this module, so a
field added to ``VISHeadOutputs`` flows through without a change here.

Shapes use the package notation (``mmvis_msts``): T frames, Q queries, K
classes, Ld decoder layers.
"""
import dataclasses
import json
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from torch import Tensor

from mmvis_msts.models.tracking_heads.vis_records import VISHeadOutputs

#: key of the ``metadata_props`` entry holding :class:`ClipGraphMeta`
META_KEY = 'mmvis_msts'


def graph_outputs(head_outs: VISHeadOutputs) -> Dict[str, Tensor]:
    """The tensors an exported graph returns, by field name.

    Per-layer fields keep only the last decoder layer, the one predict
    reads (e.g. ``cls_scores`` (Ld, 1, Q, K) -> (1, 1, Q, K)), so the
    graph does not compute the auxiliary layers' branches. With one clip,
    a per-layer field is one whose leading axis has Ld > 1 entries (the
    others lead with B = 1). Fields that are not tensors (the strides,
    ``mlvl_memory`` for the training-only discriminator) are not outputs.

    Args:
        head_outs (VISHeadOutputs): The head's forward on one clip.

    Returns:
        dict[str, Tensor]: Output name (the field) -> tensor.
    """
    num_layers = head_outs.num_layers
    outputs = {}
    for field in dataclasses.fields(head_outs):
        value = getattr(head_outs, field.name)
        if isinstance(value, Tensor):
            per_layer = value.size(0) == num_layers
            outputs[field.name] = value[-1:] if per_layer else value
    return outputs


def static_fields(
        head_outs: VISHeadOutputs) -> Tuple[Dict[str, int], List[str]]:
    """The fields an exported graph does not return.

    Args:
        head_outs (VISHeadOutputs): The head's forward on one clip.

    Returns:
        tuple[dict[str, int], list[str]]: The integer fields (strides) and
        their values, and the names of the other non-tensor fields, which
        predict does not read (``mlvl_memory``).
    """
    ints, dropped = {}, []
    for field in dataclasses.fields(head_outs):
        value = getattr(head_outs, field.name)
        if isinstance(value, int):
            ints[field.name] = value
        elif not isinstance(value, Tensor):
            dropped.append(field.name)
    return ints, dropped


@dataclass
class ClipGraphMeta:
    """What an exported graph was traced for, kept in the ONNX file.

    The input size is that of the example clip, and the padding masks of
    that size are constants; so is the clip length unless
    ``dynamic_frames``.

    Attributes:
        num_frames (int): T of the clip (traced with, if
            ``dynamic_frames``).
        input_shape (list[int]): (H, W) of the padded input
            (``batch_input_shape``).
        img_shape (list[int]): (H, W) of the unpadded, resized frames.
        ori_shape (list[int]): (H, W) of the video frames exported for.
        num_classes (int): K.
        classes (list[str], optional): Class names (``dataset_meta``).
        outputs (list[str]): Output names, fields of ``VISHeadOutputs``.
        int_fields (dict[str, int]): Integer fields of ``VISHeadOutputs``.
        dropped_fields (list[str]): Fields the graph does not compute; the
            backend sets them to empty lists.
        config (str): The config file exported from, for messages.
        dynamic_frames (bool): Whether the graph takes clips of any number
            of frames (False in files without the key).
    """

    num_frames: int
    input_shape: List[int]
    img_shape: List[int]
    ori_shape: List[int]
    num_classes: int
    classes: Optional[List[str]]
    outputs: List[str]
    int_fields: Dict[str, int]
    dropped_fields: List[str]
    config: str
    dynamic_frames: bool = False

    def to_json(self) -> str:
        """The metadata as a JSON string."""
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> 'ClipGraphMeta':
        """Parse :meth:`to_json`'s string."""
        return cls(**json.loads(text))

    def head_outputs(self, tensors: Dict[str, Tensor]) -> VISHeadOutputs:
        """The :class:`VISHeadOutputs` of a run of the graph.

        Args:
            tensors (dict[str, Tensor]): The graph's outputs by name.

        Returns:
            VISHeadOutputs: With Ld = 1 (the last layer).
        """
        return VISHeadOutputs(**tensors, **self.int_fields,
                              **{name: []
                                 for name in self.dropped_fields})
