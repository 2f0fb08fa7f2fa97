"""The web shell: the FastAPI app over the labeling stage (:mod:`cxrlab.annotate`) and the leaderboard
(:mod:`cxrlab.benchmark`).

Only this package imports FastAPI or Starlette. ``app.py`` assembles the routers (``routers/api/*``, the REST
API; ``routers/pages/*``, the HTML pages), ``deps.py`` holds the request dependencies (session, user, roles),
``errors.py`` maps domain errors to statuses, ``models.py`` the request/response models (where blinding is
enforced), ``pages.py`` what every page shares, ``server.py`` runs uvicorn.
"""
