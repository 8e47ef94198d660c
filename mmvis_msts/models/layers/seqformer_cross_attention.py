"""SeqFormer's deformable cross-attention with two output projections."""
from typing import Optional, Tuple

from mmengine.model import xavier_init
from torch import Tensor, nn

from mmvis_msts.ops import MSDeformAttn


class SeqFormerCrossAttention(MSDeformAttn):
    """Deformable cross-attention driven by box queries, with an instance
    and a box output projection.

    Sampling offsets and weights come from the per-frame box query; one
    sampled vector per (frame, query) goes through ``output_proj`` (instance
    path) and ``output_proj_box`` (box path). Parameter names match
    SeqFormer's ``MSDeformAttn`` ('decode' mode) one to one.

    Args:
        Same as :class:`mmvis_msts.ops.MSDeformAttn`
        (``batch_first=True`` is required).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not self.batch_first:
            raise ValueError(f'{type(self).__name__} needs batch_first=True')
        self.output_proj_box = nn.Linear(self.output_proj.in_features,
                                         self.embed_dims)
        self._init_box_proj()

    def _init_box_proj(self) -> None:
        """Initialize ``output_proj_box`` like ``output_proj``."""
        xavier_init(self.output_proj_box, distribution='uniform', bias=0.)

    def init_weights(self) -> None:
        """Initialize like the op module, plus ``output_proj_box``."""
        super().init_weights()
        # the parent constructor calls this before output_proj_box exists
        if hasattr(self, 'output_proj_box'):
            self._init_box_proj()

    def forward(
        self,
        query: Tensor,
        query_pos: Tensor,
        value: Tensor,
        key_padding_mask: Optional[Tensor],
        reference_points: Tensor,
        spatial_shapes: Tensor,
        level_start_index: Tensor,
    ) -> Tuple[Tensor, Tensor]:
        """Sample each frame's memory around that frame's references.

        Args:
            query (Tensor): (B*T, Q, C) box queries, clip-major.
            query_pos (Tensor): (B*T, Q, C) query position embedding.
            value (Tensor): (B*T, S, C) memory of each frame.
            key_padding_mask (Tensor, optional): (B*T, S) bool, True at
                padding.
            reference_points (Tensor): (B*T, Q, L, 2) points or
                (B*T, Q, L, 4) boxes (cx, cy, w, h), normalized and
                valid-ratio scaled.
            spatial_shapes (Tensor): (L, 2) (H_l, W_l) per level.
            level_start_index (Tensor): (L,) start of each level in S.

        Returns:
            tuple[Tensor, Tensor]: Instance-path and box-path outputs, each
            (B*T, Q, C), after dropout and before any residual.
        """
        sampled = self.sample(query + query_pos, value, reference_points,
                              spatial_shapes, level_start_index,
                              key_padding_mask)
        return (self.dropout(self.output_proj(sampled)),
                self.dropout(self.output_proj_box(sampled)))
