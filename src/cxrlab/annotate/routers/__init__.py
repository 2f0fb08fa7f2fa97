"""HTTP routers of the web app, one module per resource; ``create_app`` includes each."""
