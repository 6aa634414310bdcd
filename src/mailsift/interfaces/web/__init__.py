"""The web admin console: server-rendered pages (FastAPI + Jinja2, no JavaScript) over the
store services and the rollout service. ``build_web_router`` is mounted at ``/`` by
``mailsift serve``; see docs/ui.md."""

from mailsift.interfaces.web.router import build_web_router

__all__ = ["build_web_router"]
