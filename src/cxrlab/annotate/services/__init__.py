"""Business rules of the labeling tool, shared by the web app and the CLI."""
