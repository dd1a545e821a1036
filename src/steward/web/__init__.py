"""HTTP: the FastAPI application, its error shape, metrics and the Open Inference Protocol."""

from steward.web.app import create_app

__all__ = ["create_app"]
