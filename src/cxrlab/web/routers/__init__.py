"""HTTP routers of the web app: ``api/`` (REST, JSON) and ``pages/`` (HTML); ``create_app`` includes each."""
