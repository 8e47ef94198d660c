from .metrics import VISMetric

__all__ = ['VISMetric']
