"""The HTML page routers; they share :mod:`cxrlab.web.pages` and import no other router."""
