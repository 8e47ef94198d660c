from .vis_metric import VISMetric

__all__ = ['VISMetric']
