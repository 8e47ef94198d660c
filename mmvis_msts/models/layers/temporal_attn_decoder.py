"""SeqFormer decoder with temporal attention over each query's box
embeddings (docs/design.md §3b)."""
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.transformer import MultiheadAttention
from mmdet.registry import MODELS
from mmdet.utils import ConfigType
from torch import Tensor, nn

from .seqformer_decoder import (SeqFormerDecoder, SeqFormerDecoderLayer,
                                require_batch_first)


class TemporalAttnDecoderLayer(SeqFormerDecoderLayer):
    """Decoder layer with temporal attention between box-query
    self-attention and deformable cross-attention.

    Each query's T box embeddings attend to each other in a pre-norm
    residual block::

        x <- x + Drop(W_o MHA(LN(x) + pos, LN(x) + pos, LN(x)))

    Frames have no position embedding, so the block is equivariant to frame
    order and works for any T.

    The block starts as the identity, exactly: :meth:`init_weights` zeroes
    the output projection ``W_o`` (weight and bias), so the residual branch
    adds 0 and, the norm sitting inside the branch, nothing else touches
    ``x``. A SeqFormer checkpoint loaded into this layer (the temporal
    attention's keys missing) therefore gives SeqFormer's outputs at step 0
    (docs/design.md §3b). A post-norm ``LN(x + branch)`` could not start as
    the identity: ``LN`` re-normalises ``x`` even with a zero branch.

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

    def init_weights(self) -> None:
        """Default init, then a zero output projection of the temporal
        attention (the block starts as the identity).

        Runs after the head's xavier sweep over the decoder (as
        ``MSSTSAttention.init_weights`` in the encoder), so nothing
        overwrites the zeros.
        """
        super().init_weights()
        out_proj = self.temporal_attn.attn.out_proj
        nn.init.zeros_(out_proj.weight)
        nn.init.zeros_(out_proj.bias)

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
        normed = self.temporal_norm(x)
        # mmcv's MHA returns identity + Drop(W_o attn): the un-normed x
        x = self.temporal_attn(
            query=normed,
            key=normed,
            value=normed,
            identity=x,
            query_pos=pos,
            key_pos=pos)
        return x.view(bs, num_queries, num_frames, dims).transpose(1, 2)


@MODELS.register_module()
class TemporalAttnDecoder(SeqFormerDecoder):
    """SeqFormer decoder whose layers are :class:`TemporalAttnDecoderLayer`.

    Same constructor and forward as :class:`SeqFormerDecoder`; ``layer_cfg``
    may add ``temporal_attn_cfg``.
    """

    layer_type = TemporalAttnDecoderLayer
