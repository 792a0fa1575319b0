"""SOAP 1.1 plumbing for EWS answers: namespaces, element builders, envelopes and faults.

Answers are shaped like the captures in ../shared/ews-captures (which exchangelib 5.6 accepted): a
ServerVersionInfo header, `m:` for messages, `t:` for types, booleans spelled true/false.
"""

from __future__ import annotations

import re

from lxml import etree

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
M_NS = "http://schemas.microsoft.com/exchange/services/2006/messages"
T_NS = "http://schemas.microsoft.com/exchange/services/2006/types"
E_NS = "http://schemas.microsoft.com/exchange/services/2006/errors"
NSMAP = {"m": M_NS, "t": T_NS}

# What exchangelib 5.6 was captured accepting; Exchange Online reports a 15.20 build.
SERVER_VERSION = {
    "MajorVersion": "15",
    "MinorVersion": "20",
    "MajorBuildNumber": "8005",
    "MinorBuildNumber": "26",
    "Version": "V2018_01_08",
}

# XML 1.0 cannot carry these code points at all; lxml raises on them. Text extracted from arbitrary MIME
# (raw 8-bit headers, NULs, lone surrogates from surrogateescape) must pass through xml_safe() first.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    return _XML_ILLEGAL.sub("\ufffd", text)


def m(name: str) -> str:
    return f"{{{M_NS}}}{name}"


def t(name: str) -> str:
    return f"{{{T_NS}}}{name}"


def sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, tag, {k: xml_safe(v) for k, v in attrs.items()})
    if text is not None:
        el.text = xml_safe(text)
    return el


def children(parent: etree._Element | None) -> list[etree._Element]:
    """Element children only (no comments or processing instructions); none for a missing parent."""
    return [] if parent is None else [c for c in parent if isinstance(c.tag, str)]


def boolean(value: bool) -> str:
    return "true" if value else "false"


def _envelope(with_header: bool) -> tuple[etree._Element, etree._Element]:
    env = etree.Element(f"{{{SOAP_NS}}}Envelope", nsmap={"s": SOAP_NS})
    if with_header:
        header = etree.SubElement(env, f"{{{SOAP_NS}}}Header")
        etree.SubElement(header, t("ServerVersionInfo"), SERVER_VERSION, nsmap={"h": T_NS})
    body = etree.SubElement(env, f"{{{SOAP_NS}}}Body")
    return env, body


def response_document(operation: str) -> tuple[etree._Element, etree._Element]:
    """An envelope with an empty `m:{operation}Response/m:ResponseMessages`; returns (envelope, messages)."""
    env, body = _envelope(with_header=True)
    response = etree.SubElement(body, m(f"{operation}Response"), nsmap=NSMAP)
    return env, etree.SubElement(response, m("ResponseMessages"))


def response_message(
    messages: etree._Element,
    operation: str,
    code: str = "NoError",
    text: str | None = None,
    message_xml: dict[str, str] | None = None,
) -> etree._Element:
    """Append one `m:{operation}ResponseMessage`; the caller adds the payload (Folders, Items, RootFolder)."""
    ok = code == "NoError"
    msg = sub(messages, m(f"{operation}ResponseMessage"), ResponseClass="Success" if ok else "Error")
    if not ok:
        sub(msg, m("MessageText"), text or code)
    sub(msg, m("ResponseCode"), code)
    if not ok:
        sub(msg, m("DescriptiveLinkKey"), "0")
        if message_xml:
            xml = sub(msg, m("MessageXml"))
            for name, value in message_xml.items():
                sub(xml, t("Value"), value, Name=name)
    return msg


def serialize(env: etree._Element) -> bytes:
    return bytes(etree.tostring(env, xml_declaration=True, encoding="utf-8"))


def fault(code: str, message: str, message_xml: etree._Element | None = None, faultstring: str | None = None) -> bytes:
    """An EWS SOAP fault (sent with HTTP 500), like capture s02 and Microsoft's documented examples."""
    env, body = _envelope(with_header=False)
    flt = etree.SubElement(body, f"{{{SOAP_NS}}}Fault")
    code_el = etree.SubElement(flt, "faultcode", nsmap={"a": T_NS})
    code_el.text = f"a:{code}"
    fs = etree.SubElement(flt, "faultstring")
    fs.set("{http://www.w3.org/XML/1998/namespace}lang", "en-US")
    fs.text = xml_safe(faultstring or message)
    detail = etree.SubElement(flt, "detail")
    etree.SubElement(detail, f"{{{E_NS}}}ResponseCode", nsmap={"e": E_NS}).text = code
    etree.SubElement(detail, f"{{{E_NS}}}Message", nsmap={"e": E_NS}).text = xml_safe(message)
    if message_xml is not None:
        detail.append(message_xml)
    return serialize(env)


def server_busy_fault(back_off_ms: int) -> bytes:
    xml = etree.Element(t("MessageXml"), nsmap={"t": T_NS})
    sub(xml, t("Value"), str(back_off_ms), Name="BackOffMilliseconds")
    return fault("ErrorServerBusy", "The server cannot service this request right now. Try again later.", xml)


def schema_validation_fault(line: int, column: int, violation: str) -> bytes:
    xml = etree.Element(t("MessageXml"), nsmap={"t": T_NS})
    sub(xml, t("LineNumber"), str(line))
    sub(xml, t("LinePosition"), str(column))
    sub(xml, t("Violation"), violation)
    return fault(
        "ErrorSchemaValidation",
        "The request failed schema validation.",
        xml,
        faultstring=f"The request failed schema validation: {violation}",
    )
