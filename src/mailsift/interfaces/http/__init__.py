"""The HTTP interface: a FastAPI app serving the ``/v1/`` REST API (OpenAPI at /openapi.json)."""

from mailsift.interfaces.http.app import create_app

__all__ = ["create_app"]
