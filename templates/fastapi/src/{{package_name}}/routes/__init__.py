"""HTTP routes, one module per resource."""

from __future__ import annotations

from typing import Any

from fastapi import Response


class ModelResponse(Response):
    """A pydantic model as JSON, serialised by pydantic in one pass.

    A route returning one declares the model as its `response_model` for the OpenAPI
    document; FastAPI sends a returned `Response` as it is, without validating and
    serialising the model again.
    """

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return bytes(content.model_dump_json(), "utf-8")
