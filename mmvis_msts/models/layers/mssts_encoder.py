"""MS-STS encoder: the SeqFormer encoder plus the MS-STS attention branch."""
from typing import Optional

from mmdet.registry import MODELS
from mmdet.utils import ConfigType
from torch import Tensor

from mmvis_msts.ops import LevelShapes
from .seqformer_encoder import SeqFormerEncoder, SeqFormerEncoderLayer


class MSSTSEncoderLayer(SeqFormerEncoderLayer):
    """Encoder layer with an MS-STS branch parallel to deformable attention.

    ``x = LN(x + Drop(MSDeformAttn(x + pos, x)) + MSSTS(x))``, then
    ``x = LN(x + FFN(x))`` (docs/design.md §3a: the two branch outputs are
    summed before add & norm; the branch ends with its own dropout).

    Args:
        msts_cfg (dict): Config of the branch, built from mmdet ``MODELS``
            (default type ``MSSTSAttention``; its ``embed_dims`` must match
            the layer's).
        **kwargs: Arguments of :class:`SeqFormerEncoderLayer`.
    """

    def __init__(self,
                 msts_cfg: ConfigType = dict(
                     type='MSSTSAttention',
                     embed_dims=256,
                     inner_dims=64,
                     num_heads=4,
                     feedforward_channels=256,
                     dropout=0.1),
                 **kwargs) -> None:
        self.msts_cfg = msts_cfg
        super().__init__(**kwargs)

    def _init_layers(self) -> None:
        """Initialize the SeqFormer layer and the MS-STS branch."""
        super()._init_layers()
        self.msts_attn = MODELS.build(self.msts_cfg)
        if self.msts_attn.embed_dims != self.embed_dims:
            raise ValueError(
                f'msts_cfg embed_dims={self.msts_attn.embed_dims} differs '
                f'from the layer embed_dims={self.embed_dims}')

    def forward(self,
                query: Tensor,
                query_pos: Tensor,
                key_padding_mask: Optional[Tensor],
                spatial_shapes: Tensor,
                level_shapes: LevelShapes,
                level_start_index: Tensor,
                reference_points: Tensor,
                num_frames: int,
                identity: Optional[Tensor] = None) -> Tensor:
        """Run the layer; see :meth:`SeqFormerEncoderLayer.forward`.

        ``num_frames`` (T) and ``level_shapes`` are used here: the branch
        attends across the T frames of each clip, level by level. It sees
        the tokens without ``pos``.
        """
        identity = query if identity is None else identity
        identity = identity + self.msts_attn(query, key_padding_mask,
                                             level_shapes, num_frames)
        return super().forward(query, query_pos, key_padding_mask,
                               spatial_shapes, level_shapes, level_start_index,
                               reference_points, num_frames, identity)


@MODELS.register_module()
class MSSTSEncoder(SeqFormerEncoder):
    """SeqFormer encoder whose layers are :class:`MSSTSEncoderLayer`.

    Same constructor and forward as :class:`SeqFormerEncoder`; ``layer_cfg``
    may add ``msts_cfg``.
    """

    layer_type = MSSTSEncoderLayer
