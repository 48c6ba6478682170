"""The bare Flask app: one route (`gunicorn flask_hello:app`)."""

from flask import Flask

app = Flask(__name__)


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}
