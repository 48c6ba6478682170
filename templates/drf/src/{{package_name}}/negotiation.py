"""JSON in, JSON out: DRF content negotiation that never answers 406."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import IO, Any

from rest_framework.exceptions import ParseError
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

from .problems import BodyError, is_json, parse_json_object


class JSONOnly(BaseContentNegotiation):
    """Parse only JSON bodies (anything else is 415); render with the view's JSON renderer."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        """The first parser for a JSON body, else None (DRF answers 415)."""
        return next(iter(parsers), None) if is_json(request.content_type) else None

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, Any]:
        """The view's `application/json` renderer when it has one, else its first."""
        candidates = list(renderers)
        renderer = next(
            (r for r in candidates if r.media_type == "application/json"), candidates[0]
        )
        return renderer, renderer.media_type


class StrictJSONParser(JSONParser):
    """A JSON body read by `problems.parse_json_object`.

    DRF's own parser would let a 5000-digit integer become a 400 naming
    `sys.set_int_max_str_digits()`, and quote Python's decoding errors in the detail.
    """

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        try:
            return parse_json_object(stream.read() if stream is not None else b"")
        except BodyError as exc:
            raise ParseError(str(exc)) from None
