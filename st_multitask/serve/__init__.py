"""``stmt serve``: an HTTP server for embeddings, predictions and entities (FastAPI + uvicorn).

``create_app(model, settings)`` returns the ASGI app, to run with uvicorn, mount in another app,
or test in-process; the ``serve`` extra installs what it needs (``pip install 'st-multitask[serve]'``).

    >>> from st_multitask.serve import ServeSettings, create_app
    >>> app = create_app(settings=ServeSettings(max_client_batch=64))
    >>> sorted(r.path for r in app.routes if "POST" in getattr(r, "methods", ()))
    ['/embed', '/predict', '/search', '/similarity', '/tokenize', '/v1/embeddings']
"""

from __future__ import annotations

from .app import create_app
from .settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]
