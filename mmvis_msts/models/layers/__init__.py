from .mssts_attention import (InterScaleTemporalAttention,
                              IntraScaleTemporalAttention, MSSTSAttention)
from .mssts_encoder import MSSTSEncoder, MSSTSEncoderLayer
from .seqformer_cross_attention import SeqFormerCrossAttention
from .seqformer_decoder import SeqFormerDecoder, SeqFormerDecoderLayer
from .seqformer_encoder import SeqFormerEncoder, SeqFormerEncoderLayer
from .temporal_attn_decoder import (TemporalAttnDecoder,
                                    TemporalAttnDecoderLayer)

__all__ = [
    'IntraScaleTemporalAttention', 'InterScaleTemporalAttention',
    'MSSTSAttention', 'MSSTSEncoder', 'MSSTSEncoderLayer',
    'SeqFormerCrossAttention', 'SeqFormerDecoder', 'SeqFormerDecoderLayer',
    'SeqFormerEncoder', 'SeqFormerEncoderLayer', 'TemporalAttnDecoder',
    'TemporalAttnDecoderLayer'
]
