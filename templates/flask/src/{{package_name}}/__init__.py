"""The application package: `create_app()` in `app.py` builds the Flask app."""
