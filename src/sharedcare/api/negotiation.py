"""Content negotiation for FHIR JSON (http://hl7.org/fhir/R4/http.html#mime-type): `_format`, Accept and
Content-Type. XML is refused with a clear 406/415, never silently answered in JSON when only XML was asked for."""

from __future__ import annotations

from sharedcare.errors import NotAcceptable, UnsupportedMediaType

JSON_TYPES = {"application/fhir+json", "application/json", "json", "application/json+fhir", "text/json"}
XML_TYPES = {"application/fhir+xml", "application/xml", "xml", "text/xml", "application/xml+fhir"}
PATCH_TYPES = {"application/json-patch+json"}


def _media(value: str) -> str:
    return value.split(";")[0].strip().lower()


def check_accept(format_param: str | None, accept: str | None) -> None:
    if format_param is not None:
        media = _media(format_param)
        if media in JSON_TYPES:
            return
        if media in XML_TYPES:
            raise NotAcceptable("This server speaks FHIR JSON only; XML (_format=xml) is not supported")
        raise NotAcceptable(f"Unknown _format '{format_param}'; use json or application/fhir+json")
    if not accept:
        return
    offered = [_media(part) for part in accept.split(",")]
    if any(m in JSON_TYPES or m in ("*/*", "application/*", "text/*", "text/html", "") for m in offered):
        return
    if any(m in XML_TYPES for m in offered):
        raise NotAcceptable("This server speaks FHIR JSON only; ask for application/fhir+json")
    raise NotAcceptable(f"Cannot answer in {accept}; this server returns application/fhir+json")


def check_content_type(method: str, content_type: str | None) -> None:
    if not content_type:
        return  # lenient: many clients omit it; the body must still parse as JSON
    media = _media(content_type)
    if media in JSON_TYPES or (method == "PATCH" and media in PATCH_TYPES):
        return
    if media in XML_TYPES:
        raise UnsupportedMediaType("FHIR XML bodies are not supported; send application/fhir+json")
    raise UnsupportedMediaType(f"Content-Type {content_type} is not supported; send application/fhir+json")
