"""The bare FastAPI app: one route, no middleware (`uvicorn fastapi_hello:app`)."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
