"""The REST API routers, one module per resource; no router imports another."""
