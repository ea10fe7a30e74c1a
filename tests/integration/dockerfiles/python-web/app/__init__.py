from .views import app

__all__ = ["app"]
