from .clip_filter import DropEmptyClip
from .frame_sampling import SeqFormerClipSample
from .pseudo_video import ImageToPseudoVideo
from .wrappers import SharedRandomChoice

__all__ = [
    'DropEmptyClip', 'SeqFormerClipSample', 'ImageToPseudoVideo',
    'SharedRandomChoice'
]
