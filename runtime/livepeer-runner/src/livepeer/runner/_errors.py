"""One error hierarchy for livepeer.runner."""

from __future__ import annotations

__all__ = ["PipelineDefinitionError", "PipelineError", "RegistrationError", "RunnerError"]


class RunnerError(Exception):
    """Base class of every error raised by livepeer.runner."""


class PipelineDefinitionError(RunnerError, TypeError):
    """A pipeline class cannot be served as written (e.g. an unannotated ``predict`` parameter)."""


class PipelineError(RunnerError):
    """Raise from ``predict`` or a hook to answer with a chosen status instead of 500.

    ``raise PipelineError("model not loaded", status_code=400)``
    """

    def __init__(self, message: str, *, status_code: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


class RegistrationError(RunnerError):
    """The orchestrator refused the registration, or never answered within the retries."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
