from .clip_match_costs import ClipBBoxL2Cost, ClipGIoUCost

__all__ = ['ClipBBoxL2Cost', 'ClipGIoUCost']
