"""The typed channel between the control process and a media worker.

Messages travel pickled over a multiprocessing Pipe. Requests carry an id and
get exactly one Reply; Events flow from the worker unprompted (a session
ended, a track was published).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Request:
    id: int
    op: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reply:
    id: int
    result: Any = None
    #: (HTTP status, code, message) when the request failed
    error: tuple[int, str, str] | None = None


@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Ready:
    index: int
    port: int


class RequestError(Exception):
    """A request the worker refused; carries the HTTP status to answer with."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
