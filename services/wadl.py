"""The Capabilities Description (PS3.18 Annex H): a WADL document made from the OpenAPI one.

Annex H: one top-level ``application`` element holding one ``resources`` element whose ``base``
is the service's base URL, and a ``resource`` element for the Target Resource describing all
its methods and child resources. Both documents come from the same routes: FastAPI writes the
OpenAPI document from the routes the app has (``services.openapi`` says what each one reads
and answers), and this module, a pure function, rewrites it as WADL [WADL, W3C Member
Submission 2009]. The Retrieve Capabilities transaction itself is left out (Annex H, Note).

A resource of the tree is a path segment; segments that only lead somewhere (``frames`` of
``frames/{frames}``) are folded into the path of the resource below them.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import unquote

__all__ = ["WADL_MEDIA_TYPE", "ResourceTree", "method_id"]

JsonDict = dict[str, Any]

WADL_MEDIA_TYPE: Final = "application/vnd.sun.wadl+xml"
WADL_NS: Final = "http://wadl.dev.java.net/2009/02"
XS_NS: Final = "http://www.w3.org/2001/XMLSchema"
_METHODS: Final = ("get", "head", "post", "put", "delete", "patch")
_TEMPLATE: Final = re.compile(r"^\{(\w+)\}$")
_STATUS: Final = re.compile(r"^[1-5]\d\d$")


def method_id(operation_id: str) -> str:
    """A WADL method id from an operation id: ``search_for_studies`` -> ``SearchForStudies``."""
    return "".join(word[:1].upper() + word[1:] for word in operation_id.split("_"))


@dataclass
class _Node:
    """One path segment: the operations at it, by method, and the segments below it."""

    segment: str
    operations: dict[str, JsonDict] = field(default_factory=dict)
    children: dict[str, _Node] = field(default_factory=dict)
    parameters: dict[str, JsonDict] = field(default_factory=dict)  # path parameters by name

    @property
    def template(self) -> str | None:
        found = _TEMPLATE.match(self.segment)
        return found.group(1) if found else None


class ResourceTree:
    """The resources under one root (``/dicom-web``) of an OpenAPI document."""

    def __init__(self, openapi: JsonDict, root: str, greedy: Iterable[str] = ()) -> None:
        """``greedy``: path parameters that take the rest of the path (``{path:path}``)."""
        self._root = _Node("")
        self._greedy = frozenset(greedy)
        self._title = str(openapi.get("info", {}).get("title", ""))
        self._version = str(openapi.get("info", {}).get("version", ""))
        for path, item in openapi.get("paths", {}).items():
            if not (path == root or path.startswith(root + "/")):
                continue
            operations = {m: op for m, op in item.items() if m in _METHODS}
            if not operations:  # OPTIONS only: Retrieve Capabilities describes no itself
                continue
            node = self._root
            for segment in [s for s in path[len(root) :].split("/") if s]:
                node = node.children.setdefault(segment, _Node(segment))
            node.operations.update(operations)
            for operation in operations.values():
                for parameter in operation.get("parameters", []):
                    if parameter.get("in") == "path":
                        node.parameters.setdefault(parameter["name"], parameter)

    def find(self, target: str) -> _Node | None:
        """The resource a request target names (below the root), or ``None``."""
        segments = [unquote(s) for s in target.split("/") if s]
        node = self._root if not segments else self._match(self._root, segments)
        return node if node is self._root or (node is not None and node.operations) else None

    def _match(self, node: _Node, segments: list[str]) -> _Node | None:
        if not segments:
            return node
        first, rest = segments[0], segments[1:]
        literal = node.children.get(first)
        if literal is not None and literal.template is None:
            found = self._match(literal, rest)
            if found is not None and (found.operations or found.children):
                return found
        for child in node.children.values():
            name = child.template
            if name is None:
                continue
            if name in self._greedy:
                return child
            found = self._match(child, rest)
            if found is not None and (found.operations or found.children):
                return found
        return None

    @staticmethod
    def allow(node: _Node) -> list[str]:
        """The methods of a resource, for the ``Allow`` header (OPTIONS always)."""
        return [m.upper() for m in _METHODS if m in node.operations] + ["OPTIONS"]

    def wadl(self, base: str, target: str, node: _Node) -> bytes:
        """The WADL document of ``node`` (the resource ``target`` names) under ``base``."""
        ET.register_namespace("", WADL_NS)
        ET.register_namespace("xs", XS_NS)
        application = ET.Element(f"{{{WADL_NS}}}application")
        doc = ET.SubElement(application, f"{{{WADL_NS}}}doc", {"title": self._title})
        doc.text = f"{self._title} {self._version}: the DICOMweb services (PS3.18) it serves"
        resources = ET.SubElement(application, f"{{{WADL_NS}}}resources", {"base": base})
        if node is self._root:
            self._children(resources, node, "")
        else:
            self._resource(resources, node, target.strip("/"), bound=True)
        document: bytes = ET.tostring(application, encoding="utf-8", xml_declaration=True)
        return document

    def _children(self, parent: ET.Element, node: _Node, prefix: str) -> None:
        for child in node.children.values():
            path = f"{prefix}/{child.segment}" if prefix else child.segment
            if child.operations:
                self._resource(parent, child, path, bound=False)
            else:
                self._children(parent, child, path)

    def _resource(self, parent: ET.Element, node: _Node, path: str, *, bound: bool) -> None:
        resource = ET.SubElement(parent, f"{{{WADL_NS}}}resource", {"path": path})
        if not bound:
            for name in _names(path):
                parameter = node.parameters.get(name, {"name": name})
                _param(resource, parameter, "template", required=True)
        for method in _METHODS:
            if method in node.operations:
                _method(resource, method, node.operations[method])
        self._children(resource, node, "")


def _names(path: str) -> list[str]:
    return re.findall(r"\{(\w+)\}", path)


def _param(parent: ET.Element, parameter: Mapping[str, Any], style: str, *, required: bool) -> None:
    schema = parameter.get("schema", {})
    attributes = {"name": str(parameter["name"]), "style": style, "type": "xs:string"}
    if required or parameter.get("required"):
        attributes["required"] = "true"
    if schema.get("type") in ("array", "object"):
        attributes["repeating"] = "true"
    element = ET.SubElement(parent, f"{{{WADL_NS}}}param", attributes)
    if parameter.get("description"):
        ET.SubElement(element, f"{{{WADL_NS}}}doc").text = str(parameter["description"])


def _method(resource: ET.Element, method: str, operation: JsonDict) -> None:
    attributes = {"name": method.upper(), "id": method_id(str(operation.get("operationId", "")))}
    element = ET.SubElement(resource, f"{{{WADL_NS}}}method", attributes)
    if operation.get("description") or operation.get("summary"):
        text = str(operation.get("description") or operation.get("summary"))
        ET.SubElement(element, f"{{{WADL_NS}}}doc").text = text.strip()
    request = ET.SubElement(element, f"{{{WADL_NS}}}request")
    for parameter in operation.get("parameters", []):
        if parameter.get("in") in ("query", "header"):
            _param(request, parameter, str(parameter["in"]), required=False)
    for media_type in operation.get("requestBody", {}).get("content", {}):
        ET.SubElement(request, f"{{{WADL_NS}}}representation", {"mediaType": media_type})
    for status, answer in operation.get("responses", {}).items():
        if not _STATUS.match(str(status)):
            continue  # "4XX": the errors, application/json status reports
        response = ET.SubElement(element, f"{{{WADL_NS}}}response", {"status": str(status)})
        if answer.get("description"):
            ET.SubElement(response, f"{{{WADL_NS}}}doc").text = str(answer["description"])
        for media_type in answer.get("content", {}):
            ET.SubElement(response, f"{{{WADL_NS}}}representation", {"mediaType": media_type})
