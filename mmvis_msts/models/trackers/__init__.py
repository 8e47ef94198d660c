from .clip_linker import ClipLinker, LinkCandidates

__all__ = ['ClipLinker', 'LinkCandidates']
