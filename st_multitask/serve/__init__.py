"""The HTTP server (``stmt serve``): FastAPI routes over one batching queue."""
