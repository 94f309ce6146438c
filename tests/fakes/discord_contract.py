"""Discord's own OpenAPI 3.1 description as a checker for the fake: what the bot sends, and what the fake answers.

A request the description does not allow would be refused by Discord, so the fake refuses it too and the
test fails; an answer the description does not allow is a bug in the fake. The 1.1 MB file is parsed once
per process and validators are built once per schema.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jsonschema
import jsonschema.exceptions
import jsonschema.protocols
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).parents[1] / "contracts/discord-openapi.json"
_URI = "urn:discord-openapi"
INVALID_FORM_BODY = 50035
_SNOWFLAKE = {"anyOf": [{"type": "string", "pattern": "^(0|[1-9][0-9]*)$"}, {"type": "integer", "minimum": 0}]}


@dataclass(frozen=True)
class Operation:
    method: str
    template: str  # e.g. /channels/{channel_id}/messages
    pointer: str  # JSON pointer of the operation object in the spec
    params: tuple[tuple[str, dict[str, Any]], ...]  # (pointer, parameter) at path and operation level
    body: dict[str, Any] | None  # requestBody


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _patch_snowflakes(node: Any) -> Any:
    """Discord takes snowflakes as JSON integers too (discord.py sends attachment ids 0, 1, ...)."""
    if isinstance(node, dict):
        if node.get("format") == "snowflake" and node.get("type") == "string":
            return dict(_SNOWFLAKE)
        return {key: _patch_snowflakes(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_patch_snowflakes(item) for item in node]
    return node


class DiscordContract:
    """Operations by method and path template; validators for their request bodies, queries and answers."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = _patch_snowflakes(spec)
        resource = Resource.from_contents(self.spec, default_specification=DRAFT202012)
        self._registry: Registry[Any] = Registry().with_resource(_URI, resource)
        self._validators: dict[str, jsonschema.protocols.Validator] = {}
        self._operations: list[tuple[re.Pattern[str], Operation]] = []
        for template, item in self.spec["paths"].items():
            regex = re.compile("".join(_segment(part) for part in re.split(r"(\{[^}]+\})", template)))
            for method, op in item.items():
                if method == "parameters":
                    continue
                base, pointer = f"/paths/{_escape(template)}", f"/paths/{_escape(template)}/{method}"
                params = (
                    *((f"{base}/parameters/{i}", p) for i, p in enumerate(item.get("parameters", ()))),
                    *((f"{pointer}/parameters/{i}", p) for i, p in enumerate(op.get("parameters", ()))),
                )
                self._operations.append(
                    (regex, Operation(method.upper(), template, pointer, params, op.get("requestBody")))
                )
        # Literal segments win over parameters: /users/@me before /users/{user_id}.
        self._operations.sort(key=lambda entry: entry[1].template.count("{"))

    def operation(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        for regex, op in self._operations:
            match = regex.fullmatch(path)
            if match and op.method == method.upper():
                return op, match.groupdict()
        return None

    # -- requests -------------------------------------------------------------------------------------

    def request_errors(
        self, method: str, path: str, query: dict[str, str], body: Any, content_type: str
    ) -> tuple[Operation | None, dict[str, Any]]:
        """Discord-style nested `errors` ({} when valid) for one request, and the operation it matched."""
        found = self.operation(method, path)
        if found is None:
            return None, {"_errors": [{"code": INVALID_FORM_BODY, "message": f"{method} {path} is not in the API"}]}
        op, path_args = found
        errors: dict[str, Any] = {}
        declared = {(p["in"], p["name"]): (at, p) for at, p in op.params}
        for name in query:
            if ("query", name) not in declared:
                _add(errors, [name], f"{name} is not a parameter of {op.template}")
        for (where, name), (at, param) in declared.items():
            given = path_args.get(name) if where == "path" else query.get(name)
            if given is not None:
                for field, message in self._problems(f"{at}/schema", _coerce(given, param["schema"])):
                    _add(errors, [name, *field], message)
            elif param.get("required") and where != "path":
                _add(errors, [name], "This field is required")
        if op.body is not None:
            kind = "multipart/form-data" if content_type.startswith("multipart/") else "application/json"
            if kind not in op.body.get("content", {}):
                _add(errors, [], f"{op.template} does not take {kind}")
            elif body is None:
                if op.body.get("required"):
                    _add(errors, [], "This request needs a body")
            else:
                for field, message in self._problems(f"{op.pointer}/requestBody/content/{_escape(kind)}/schema", body):
                    _add(errors, field, message)
        elif body is not None:
            _add(errors, [], f"{op.template} takes no body")
        return op, errors

    # -- responses ------------------------------------------------------------------------------------

    def response_errors(self, op: Operation, status: int, body: Any) -> list[str]:
        """Why the fake's answer is not one Discord could give (empty when it is)."""
        responses = self.spec["paths"][op.template][op.method.lower()]["responses"]
        key = str(status) if str(status) in responses else f"{str(status)[0]}XX"
        listed = responses.get(key)
        if listed is None:
            return [] if status >= 500 else [f"{status} is not a documented answer of {op.method} {op.template}"]
        pointer = f"{op.pointer}/responses/{key}"
        if "$ref" in listed:
            pointer = listed["$ref"].removeprefix("#")
            listed = self._resolve(pointer)
        if "application/json" not in listed.get("content", {}):
            return [] if body is None else [f"{status} has no body in the spec"]
        problems = self._problems(f"{pointer}/content/application~1json/schema", body)
        return [f"{'/'.join(field) or '<body>'}: {message}" for field, message in problems]

    # -- plumbing -------------------------------------------------------------------------------------

    def _resolve(self, pointer: str) -> Any:
        node: Any = self.spec
        for token in pointer.strip("/").split("/"):
            node = node[token.replace("~1", "/").replace("~0", "~")]
        return node

    def _problems(self, pointer: str, instance: Any) -> list[tuple[list[str], str]]:
        """(field path, message) for each way `instance` breaks the schema at `pointer`."""
        validator = self._validators.get(pointer)
        if validator is None:
            ref = {"$ref": f"{_URI}#{quote(pointer, safe='/~@')}"}
            validator = jsonschema.Draft202012Validator(ref, registry=self._registry)
            self._validators[pointer] = validator
        out = []
        for error in validator.iter_errors(instance):
            best = _deepest(error)
            message = (
                f"Must be {best.validator_value} or fewer in length." if best.validator == "maxLength" else _short(best)
            )
            out.append(([str(p) for p in best.absolute_path], message))
        return out


def _segment(part: str) -> str:
    if part.startswith("{"):
        return f"(?P<{part[1:-1]}>[^/]+)"
    return re.escape(part)


def _coerce(value: str, schema: dict[str, Any]) -> Any:
    """Query strings are text; compare them with what the schema types mean (discord.py sends `1` for true)."""
    kind = schema.get("type")
    if kind == "boolean":
        return {"true": True, "True": True, "1": True, "false": False, "False": False, "0": False}.get(value, value)
    if kind in ("integer", "number"):
        try:
            return int(value) if kind == "integer" else float(value)
        except ValueError:
            return value
    return value


def _deepest(error: jsonschema.exceptions.ValidationError) -> jsonschema.exceptions.ValidationError:
    """Inside anyOf/oneOf, the branch that got furthest into the body names the real mistake."""
    while error.context:
        deeper = max(error.context, key=_reach)
        if _reach(deeper) <= len(error.absolute_path):
            break
        error = deeper
    return error


def _reach(error: jsonschema.exceptions.ValidationError) -> int:
    return max([len(error.absolute_path), *(_reach(e) for e in error.context or ())])


def _short(error: jsonschema.exceptions.ValidationError) -> str:
    text = error.message
    return text if len(text) <= 200 else text[:200] + "..."


def _add(errors: dict[str, Any], where: list[str], message: str) -> None:
    """Discord's nested error shape; the spec types a field error's `code` as an integer."""
    node = errors
    for key in where:
        node = node.setdefault(key, {})
    node.setdefault("_errors", []).append({"code": INVALID_FORM_BODY, "message": message})


def _flatten(errors: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, value in errors.items():
        if key == "_errors":
            out += [f"{prefix or '<body>'}: {e['message']}" for e in value]
        else:
            out += _flatten(value, f"{prefix}/{key}" if prefix else key)
    return out


def describe(errors: dict[str, Any]) -> str:
    """One line per error, `field/path: message`, for violation reports."""
    return "; ".join(_flatten(errors))


@functools.cache
def contract() -> DiscordContract:
    """The process-wide contract: parsing the file and building validators is paid once."""
    return DiscordContract(json.loads(SPEC_PATH.read_text(encoding="utf-8")))
