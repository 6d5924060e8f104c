"""The control plane's errors: each class is the HTTP status it answers with.

    ModrunError
     └── ControlError                400  a request the control plane cannot do
          ├── BadRequest             400  malformed or invalid input
          ├── Unauthorized           401  no credentials, or ones that do not verify
          │    └── Unauthenticated   401  a token or key that identifies no one
          ├── Forbidden              403  a principal who may not do this
          ├── NotFound               404
          ├── Conflict               409
          ├── TooLarge               413
          ├── Unprocessable          422  valid input the current state refuses
          ├── TooManyRequests        429  (with Retry-After)
          ├── Misconfigured          500  the control plane's own setup is wanting
          └── Unavailable            503  a part it needs is not there

The route machinery (``control/routing.py``) answers ``{"error": message}``
with the class's status and the error's headers; handlers raise, never map.
"""

from __future__ import annotations

from modrun.errors import ModrunError


class ControlError(ModrunError):
    status = 400

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.headers = headers or {}


class BadRequest(ControlError):
    status = 400


class Unauthorized(ControlError):
    status = 401


class Unauthenticated(Unauthorized):
    pass


class Forbidden(ControlError):
    status = 403


class NotFound(ControlError):
    status = 404


class Conflict(ControlError):
    status = 409


class TooLarge(ControlError):
    status = 413


class Unprocessable(ControlError):
    status = 422


class TooManyRequests(ControlError):
    status = 429


class Misconfigured(ControlError):
    status = 500


class Unavailable(ControlError):
    status = 503
