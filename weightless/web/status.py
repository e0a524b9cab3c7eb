"""Status lines with the standard reason phrase: twisted.web does not know some codes (429
would go out as "429 Unknown Status")."""

from __future__ import annotations

from http import HTTPStatus

from twisted.web.iweb import IRequest


def set_status(request: IRequest, code: int) -> None:
    request.setResponseCode(code, HTTPStatus(code).phrase.encode("ascii"))
