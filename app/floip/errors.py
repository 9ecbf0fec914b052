"""Typed FLOIP errors; ``code`` is stable for partners and ``str(error)`` is a short human text."""

from __future__ import annotations

from app.errors import RimayError


class FloipError(RimayError):
    """Base of every refused Flow Results request or export."""

    code = "invalid_request"


class InvalidPackageId(FloipError):
    """A package id that is not a UUID."""

    code = "invalid_package_id"


class PackageNotFound(FloipError):
    """No survey of any flow has this package id."""

    status_code = 404
    code = "package_not_found"


class SurveyNotFound(FloipError):
    """No flow, or no survey in the flow, has this name."""

    status_code = 404
    code = "survey_not_found"


class InvalidCursor(FloipError):
    """A page cursor that this server did not issue for this package."""

    code = "invalid_cursor"


class InvalidPageSize(FloipError):
    """A page size that is not a whole number in the allowed range."""

    code = "invalid_page_size"


class InvalidTimestamp(FloipError):
    """A filter timestamp that is not RFC 3339 with a time zone offset."""

    code = "invalid_timestamp"


class UnsupportedParameter(FloipError):
    """A parameter of the specification this server does not implement."""

    code = "unsupported_parameter"
