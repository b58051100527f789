"""What every API router shares: the error shape in the schema and a router factory.

Every answer that is not a success is :class:`ErrorBody` (built by ``web/errors.py``); declaring it
on every operation puts it in the OpenAPI schema, so a client (and the schema fuzzer) can rely on
it. A resource's router is ``api_router("orders")``: prefix ``/api/v1``, its tag, the errors.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

PREFIX = "/api/v1"


class ProblemDetail(BaseModel):
    field: str = Field(description="the field at fault, as a path: `lines[0].quantity`")
    value: str = Field(description="the value as it was given")
    code: str = Field(description="stable: `required`, `not_an_amount`, `out_of_range` …")
    message: str = Field(description="what is wrong")
    fix: str = Field(description="how to fix it")


class ErrorDetail(BaseModel):
    code: str = Field(description="stable, machine-readable (e.g. `not_found`, `invalid_input`, `forbidden`)")
    message: str = Field(description="what is wrong, naming the value")
    hint: str = Field(description="what to do about it")
    field: str | None = Field(default=None, description="the input field at fault, when one is")
    fix: dict[str, Any] | None = Field(default=None, description="the fix as data: action, params, text")
    problems: list[ProblemDetail] | None = Field(
        default=None, description="every problem of the input, when there are several (an order placed by hand)"
    )


class ErrorBody(BaseModel):
    error: ErrorDetail


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No valid API token"},
    403: {"model": ErrorBody, "description": "The token's role does not allow it"},
    404: {"model": ErrorBody, "description": "No such object for this account"},
    422: {"model": ErrorBody, "description": "Invalid input"},
}


def api_router(tag: str) -> APIRouter:
    return APIRouter(prefix=PREFIX, tags=[tag], responses=ERRORS)
