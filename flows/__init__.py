"""The Prefect flows: orchestration only (`Phase4Flow` is Prefect's flow, lighter to start)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, ParamSpec, TypeVar

from prefect import Flow
from pydantic import Field
from pydantic_core import to_jsonable_python

from nba_calendar import FIRST_DAY, LAST_DAY

P = ParamSpec("P")
R = TypeVar("R")
# A new run's server checks `pattern`, not `format: date` (`2024-13-45`); the flow ge and le.
DAY = r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$"
Day = Annotated[date, Field(ge=FIRST_DAY, le=LAST_DAY, json_schema_extra={"pattern": DAY})]


class Phase4Flow(Flow[P, R]):
    """A flow whose run records its parameters (dates, processor names, flags) as JSON with
    pydantic, already loaded, rather than with FastAPI's encoder: importing FastAPI cost every
    command ~0.2 s before its flow started. What neither encodes is stored as Prefect does."""

    def serialize_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        def unknown(value: Any) -> str:
            return f"<{type(value).__name__}>"

        return {k: to_jsonable_python(v, fallback=unknown) for k, v in parameters.items()}


def flow(**options: Any) -> Callable[[Callable[P, R]], Phase4Flow[P, R]]:
    return lambda fn: Phase4Flow(fn, **options)
