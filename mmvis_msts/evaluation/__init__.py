from .metrics import VISMetric, ytvis_results

__all__ = ['VISMetric', 'ytvis_results']
