"""The bare Bottle app: one route (`gunicorn bottle_hello:app`)."""

from bottle import Bottle

app = Bottle()


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}
