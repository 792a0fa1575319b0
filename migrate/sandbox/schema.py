"""Validation of EWS SOAP bodies against Microsoft's published schema (messages.xsd + types.xsd).

Real Exchange rejects a request that does not match its schema with ErrorSchemaValidation; a lenient stand-in
would let a client bug through to production. The SOAP envelope itself is not in these schemas, so each
s:Header child and the s:Body child are validated on their own, as ../shared/ews-schema/validate.py does.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from .soap import SOAP_NS

# types.xsd imports the xml: namespace without a location and libxml2 will not fetch it.
_XML_XSD = b"""<?xml version="1.0"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="http://www.w3.org/XML/1998/namespace">
  <xs:attribute name="lang" type="xs:language"/>
  <xs:attribute name="space"><xs:simpleType><xs:restriction base="xs:NCName">
    <xs:enumeration value="default"/><xs:enumeration value="preserve"/></xs:restriction></xs:simpleType>
  </xs:attribute>
  <xs:attribute name="base" type="xs:anyURI"/>
  <xs:attribute name="id" type="xs:ID"/>
</xs:schema>"""

# libxml2 enforces Unique Particle Attribution, which Microsoft's types.xsd breaks in one place; and
# Exchange Online knows distinguished folder ids that the 2016 schema lacks but exchangelib 5.6 asks for.
# Same patch as ../shared/ews-schema/validate.py, applied only when types.lxml.xsd is not shipped.
_UPA_OLD = """<xs:element ref="t:AbsoluteDateTransition" minOccurs="0" maxOccurs="unbounded" />
            <xs:element ref="t:RecurringDayTransition" minOccurs="0" maxOccurs="unbounded" />
            <xs:element ref="t:RecurringDateTransition" minOccurs="0" maxOccurs="unbounded" />
            <xs:element ref="t:Transition" minOccurs="0" maxOccurs="unbounded" />"""
_UPA_NEW = """<xs:element ref="t:Transition" minOccurs="0" maxOccurs="unbounded" />"""
_ENUM_ANCHOR = """            <xs:enumeration value="onedrivevolume" />\n"""
_EXTRA_DISTINGUISHED = (
    "allcategorizeditems", "allcontacts", "allitems", "allpersonmetadata", "companycontacts",
    "dlppolicyevaluation", "fromfavoritesenders", "inference", "onenotepagepreviews",
    "peoplecentricconversationbuddies", "qedcdefaultretention", "qedclongretention", "qedcmediumretention",
    "qedcshortretention", "quarantinedemail", "quarantinedemaildefaultcategory",
    "recoverableitemssubstrateholds", "relevantcontacts", "sharepointnotifications", "shortnotes",
    "temporarysaves", "usercuratedcontacts", "alltodotasks",
)


@dataclass(frozen=True)
class SchemaViolation:
    line: int
    column: int
    message: str
    operation: str = ""

    def __str__(self) -> str:
        return f"{self.operation or '?'}: line {self.line} col {self.column}: {self.message}"


class EwsSchema:
    def __init__(self, schema_dir: Path):
        if not (schema_dir / "messages.xsd").is_file():
            raise FileNotFoundError(f"no EWS schema (messages.xsd) in {schema_dir}")
        # The shared schema folder is read-only in CI: generated helpers go to a private temp dir instead.
        self._scratch = tempfile.TemporaryDirectory(prefix="ews-schema-")
        scratch = Path(self._scratch.name)
        xml_xsd = schema_dir / "xml.xsd"
        if not xml_xsd.is_file():
            xml_xsd = scratch / "xml.xsd"
            xml_xsd.write_bytes(_XML_XSD)
        types = schema_dir / "types.lxml.xsd"
        if not types.is_file():
            text = (schema_dir / "types.xsd").read_text(encoding="utf-8-sig")
            if _UPA_OLD not in text or _ENUM_ANCHOR not in text:
                raise ValueError(f"{schema_dir}/types.xsd differs from the expected copy; cannot patch it")
            extra = "".join(f'            <xs:enumeration value="{v}" />\n' for v in _EXTRA_DISTINGUISHED)
            text = text.replace(_UPA_OLD, _UPA_NEW).replace(_ENUM_ANCHOR, _ENUM_ANCHOR + extra)
            types = scratch / "types.lxml.xsd"
            types.write_text(text, encoding="utf-8")
        # Importing the patched types first makes libxml2 ignore messages.xsd's own import of types.xsd.
        driver = f"""<?xml version="1.0"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:o365-migrate:sandbox">
  <xs:import namespace="http://www.w3.org/XML/1998/namespace" schemaLocation="{xml_xsd.as_uri()}"/>
  <xs:import namespace="http://schemas.microsoft.com/exchange/services/2006/types"
             schemaLocation="{types.as_uri()}"/>
  <xs:import namespace="http://schemas.microsoft.com/exchange/services/2006/messages"
             schemaLocation="{(schema_dir / 'messages.xsd').as_uri()}"/>
</xs:schema>"""
        self._schema = etree.XMLSchema(etree.fromstring(driver.encode(), base_url=schema_dir.as_uri() + "/"))

    def close(self) -> None:
        self._scratch.cleanup()

    def validate(self, envelope: etree._Element) -> list[SchemaViolation]:
        """Violations in the header parts and the body part of a parsed SOAP envelope (faults are skipped)."""
        parts: list[etree._Element] = []
        header = envelope.find(f"{{{SOAP_NS}}}Header")
        if header is not None:
            parts.extend(child for child in header if isinstance(child.tag, str))
        body = envelope.find(f"{{{SOAP_NS}}}Body")
        if body is not None:
            parts.extend(c for c in body if isinstance(c.tag, str) and etree.QName(c).namespace != SOAP_NS)
        problems: list[SchemaViolation] = []
        for part in parts:
            # lxml validates a subtree in place (it roots a fake document at the element), so even a request
            # with a 30 MB MimeContent is not copied; line numbers stay those of the original document.
            if not self._schema.validate(part):
                problems.extend(
                    SchemaViolation(e.line, e.column, e.message, etree.QName(part).localname)
                    for e in self._schema.error_log
                )
        return problems
