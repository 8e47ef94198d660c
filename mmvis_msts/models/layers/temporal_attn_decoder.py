"""SeqFormer decoder with temporal attention over each query's box
embeddings (docs/design.md §3b)."""
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.transformer import MultiheadAttention
from mmdet.registry import MODELS
from mmdet.utils import ConfigType
from torch import Tensor

from .seqformer_decoder import (SeqFormerDecoder, SeqFormerDecoderLayer,
                                require_batch_first)


class TemporalAttnDecoderLayer(SeqFormerDecoderLayer):
    """Decoder layer with temporal attention between box-query
    self-attention and deformable cross-attention.

    Each query's T box embeddings attend to each other
    (q = k = x + pos, v = x), then add & LN. Frames have no position
    embedding, so the block is equivariant to frame order and works for any
    T.

    Args:
        temporal_attn_cfg (dict): mmcv ``MultiheadAttention`` config of the
            temporal attention.
        **kwargs: Arguments of :class:`SeqFormerDecoderLayer`.
    """

    def __init__(self,
                 temporal_attn_cfg: ConfigType = dict(
                     embed_dims=256,
                     num_heads=8,
                     attn_drop=0.1,
                     dropout_layer=dict(type='Dropout', drop_prob=0.1),
                     batch_first=True),
                 **kwargs) -> None:
        self.temporal_attn_cfg = require_batch_first(temporal_attn_cfg,
                                                     'temporal_attn_cfg')
        super().__init__(**kwargs)

    def _init_layers(self) -> None:
        """Initialize the SeqFormer layer and the temporal attention."""
        super()._init_layers()
        self.temporal_attn = MultiheadAttention(**self.temporal_attn_cfg)
        self.temporal_norm = build_norm_layer(self.norm_cfg,
                                              self.embed_dims)[1]

    def attend_box_queries(self, query_box: Tensor,
                           query_pos: Tensor) -> Tensor:
        """Per-frame self-attention, then attention across frames.

        Args:
            query_box (Tensor): (B, T, Q, C) box queries.
            query_pos (Tensor): (B, Q, C) query position embedding.

        Returns:
            Tensor: (B, T, Q, C).
        """
        query_box = super().attend_box_queries(query_box, query_pos)
        bs, num_frames, num_queries, dims = query_box.shape
        # (B, T, Q, C) -> (B*Q, T, C): tokens = one query's frames
        x = query_box.transpose(1, 2).reshape(-1, num_frames, dims)
        pos = query_pos.reshape(-1, 1, dims).expand_as(x)
        x = self.temporal_attn(
            query=x, key=x, value=x, query_pos=pos, key_pos=pos)
        x = self.temporal_norm(x)
        return x.view(bs, num_queries, num_frames, dims).transpose(1, 2)


@MODELS.register_module()
class TemporalAttnDecoder(SeqFormerDecoder):
    """SeqFormer decoder whose layers are :class:`TemporalAttnDecoderLayer`.

    Same constructor and forward as :class:`SeqFormerDecoder`; ``layer_cfg``
    may add ``temporal_attn_cfg``.
    """

    layer_type = TemporalAttnDecoderLayer
