"""Small OpenAPI documents for the corpus test: one per construct users' schemas have (issue 14).

Each is a BYOC container document unless it marks operations itself; ``refused`` cases must fail generation
with one line naming the construct and its JSON pointer.
"""

from __future__ import annotations

from typing import Any


def doc(
    paths: dict[str, Any], schemas: dict[str, Any] | None = None, version: str = "3.1.0", **top: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "openapi": version,
        "info": {"title": "case", "version": "1"},
        "paths": paths,
    }
    out.update(top)
    if schemas:
        out["components"] = {"schemas": schemas}
    return out


def post(
    body: Any = None,
    *,
    media: str = "application/json",
    out: Any = None,
    out_media: str = "application/json",
    **extra: Any,
) -> dict[str, Any]:
    op: dict[str, Any] = {}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {media: {"schema": body}}}
    content = {out_media: {"schema": out}} if out is not None else {out_media: {}}
    op["responses"] = {"200": {"description": "ok", "content": content}}
    op.update(extra)
    return {"post": op}


def obj(props: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required or list(props), **extra}


STR = {"type": "string"}
INT = {"type": "integer"}

# name -> document; each must generate, import, pass mypy --strict and serialize a call per operation
SUPPORTED: dict[str, dict[str, Any]] = {
    "formats": doc(
        {
            "/f": post(
                obj(
                    {
                        "id": {"type": "string", "format": "uuid"},
                        "at": {"type": "string", "format": "date-time"},
                        "day": {"type": "string", "format": "date"},
                        "home": {"type": "string", "format": "uri"},
                        "ip": {"type": "string", "format": "ipv4"},
                        "ip6": {"type": "string", "format": "ipv6"},
                        "took": {"type": "string", "format": "duration"},
                        "mail": {"type": "string", "format": "email"},
                        "secret": {"type": "string", "format": "password"},
                        "blob": {"type": "string", "format": "byte"},
                    }
                ),
                out=obj(
                    {
                        "id": {"type": "string", "format": "uuid"},
                        "mail": {"type": "string", "format": "email"},
                    }
                ),
            )
        }
    ),
    "name_collisions": doc(
        {
            "/pet": post(
                {"$ref": "#/components/schemas/Pet"}, out={"$ref": "#/components/schemas/Pet"}
            ),
            "/pet/{names}": post(
                obj(
                    {
                        "int": INT,
                        "str": STR,
                        "list": {"type": "array", "items": STR},
                        "timeout": INT,
                        "build_input": STR,
                        "PetInput": STR,
                        "self": STR,
                        "names": STR,
                        "route": STR,
                    }
                ),
                parameters=[{"name": "names", "in": "path", "required": True, "schema": STR}],
            ),
            "/Pet": post(obj({"Pet": {"$ref": "#/components/schemas/Pet"}})),
            "/run": post(obj({"x": INT})),
            "/class/def": post(
                obj({"date": {"type": "string", "format": "date"}, "Any": STR, "Field": INT})
            ),
        },
        {
            "Pet": obj({"name": STR, "type": STR, "id": INT}),
            "Field": obj({"BaseModel": STR}),
            "names": obj({"x": INT}),
            "none": obj({"x": INT}),
        },
        **{"x-livepeer-capability": "names"},
    ),
    "non_ascii": doc(
        {
            "/größe/{straße}": post(
                obj({"café": STR, "名前": STR, "naïve-ßig": INT}),
                parameters=[{"name": "straße", "in": "path", "required": True, "schema": STR}],
            ),
        },
        {"Ünïcode": obj({"ø": STR})},
        info={"title": "Bücher Café", "version": "1"},
    ),
    "path_params": doc(
        {
            "/items/{item_id}/tags/{tag}": {
                "parameters": [{"name": "item_id", "in": "path", "required": True, "schema": INT}],
                **post(
                    obj({"tag": STR, "note": STR}, ["note"]),
                    out=obj({"ok": {"type": "boolean"}}),
                    parameters=[
                        {"$ref": "#/components/parameters/Tag"},
                    ],
                ),
            },
            "/items": post(obj({"name": STR})),
        },
        components={
            "parameters": {
                "Tag": {
                    "name": "tag",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "enum": ["a", "b"]},
                }
            }
        },
    ),
    "array_body_wrapped": doc(
        {
            "/batch": post(
                obj(
                    {
                        "items": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Item"},
                            "minItems": 1,
                        }
                    }
                )
            )
        },
        {"Item": obj({"n": INT})},
    ),
    "allof_many": doc(
        {
            "/a": post(
                {"$ref": "#/components/schemas/Both"}, out={"$ref": "#/components/schemas/Both"}
            )
        },
        {
            "A": obj({"a": INT}),
            "B": obj({"b": STR}),
            "Both": {
                "allOf": [
                    {"$ref": "#/components/schemas/A"},
                    {"$ref": "#/components/schemas/B"},
                    obj({"c": {"type": "number"}}),
                ],
                "properties": {"d": STR},
                "required": ["d"],
            },
        },
    ),
    "uploads_31": doc(
        {
            "/upload": post(
                obj(
                    {
                        "file": {"type": "string", "contentMediaType": "application/octet-stream"},
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        "caption": STR,
                        "meta": {"type": "string", "contentMediaType": "application/json"},
                        "b64": {"type": "string", "contentEncoding": "base64"},
                    },
                    ["file", "files"],
                ),
                media="multipart/form-data",
                out=obj({"n": INT}),
            )
        }
    ),
    "sse_untyped": doc(
        {"/events": post(obj({"q": STR}), out_media="text/event-stream; charset=utf-8")}
    ),
    "sse_typed": doc(
        {
            "/ticks": post(
                obj({"q": STR}),
                out={"$ref": "#/components/schemas/Tick"},
                out_media="text/event-stream",
            )
        },
        {"Tick": obj({"p": {"type": "number"}})},
    ),
    "media_params": doc(
        {
            "/j": post(
                obj({"x": INT}),
                media="application/json; charset=utf-8",
                out=obj({"y": INT}),
                out_media="application/problem+json",
            ),
            "/v": post(
                obj({"x": INT}),
                media="application/vnd.api+json",
                out={"type": "string"},
                out_media="image/png",
            ),
        }
    ),
    "unknown_keywords": doc(
        {
            "/u": post(
                obj({"x": {"type": "integer", "minimun": 3, "x-internal": True, "example": 4}}),
                **{"x-codeSamples": []},
            )
        }
    ),
    "read_write_only": doc(
        {
            "/rw": post(
                {"$ref": "#/components/schemas/User"}, out={"$ref": "#/components/schemas/User"}
            )
        },
        {
            "User": {
                "type": "object",
                "required": ["id", "name", "password"],
                "properties": {
                    "id": {"type": "integer", "readOnly": True},
                    "name": STR,
                    "password": {"type": "string", "writeOnly": True},
                },
            }
        },
    ),
    "prefix_items": doc(
        {
            "/p": post(
                obj(
                    {
                        "pair": {
                            "type": "array",
                            "prefixItems": [STR, INT],
                            "minItems": 2,
                            "maxItems": 2,
                        }
                    }
                )
            )
        }
    ),
    "defaults": doc(
        {
            "/d": post(
                obj(
                    {
                        "opts": {"$ref": "#/components/schemas/Opts", "default": {"k": 1}},
                        "either": {
                            "anyOf": [{"$ref": "#/components/schemas/Opts"}, INT],
                            "default": {"k": 2},
                        },
                        "n": {"anyOf": [INT, STR], "default": 3},
                        "tags": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Opts"},
                            "default": [{"k": 1}],
                        },
                        "nothing": {"type": "integer", "default": None},
                        "words": {"type": "array", "items": STR, "default": ["a"]},
                    },
                    [],
                ),
                out=obj({"opts": {"$ref": "#/components/schemas/Opts", "default": {"k": 1}}}, []),
            )
        },
        {"Opts": obj({"k": INT})},
    ),
    "constrained_unions": doc(
        {
            "/c": post(
                obj(
                    {
                        "v": {
                            "anyOf": [
                                {"type": "string", "maxLength": 5},
                                {"type": "integer", "minimum": 0},
                            ]
                        },
                        "w": {
                            "oneOf": [
                                {"type": "string", "pattern": "^a"},
                                {"type": "number", "maximum": 9},
                                {"type": "null"},
                            ]
                        },
                    },
                    ["v"],
                )
            )
        }
    ),
    "openapi30": doc(
        {
            "/o": post(
                obj(
                    {
                        "x": {"type": "integer", "nullable": True},
                        "e": {"type": "string", "enum": ["a", "b"], "nullable": True},
                    },
                    ["x"],
                ),
                out={"$ref": "#/components/schemas/R"},
            )
        },
        {"R": obj({"r": {"type": "string", "nullable": True}})},
        version="3.0.3",
    ),
    "security_warned": doc({"/s": post(obj({"x": INT}))}, security=[{"bearer": []}]),
    "root_op": doc(
        {"/": post(obj({"text": STR}), out=obj({"text": STR})), "/other": post(obj({"n": INT}))}
    ),
}

# name -> (document, expected text of the one-line error: construct + pointer)
REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "query_param": (
        doc(
            {
                "/q": post(
                    obj({"x": INT}), parameters=[{"name": "limit", "in": "query", "schema": INT}]
                )
            }
        ),
        "#/paths/~1q/post/parameters/0: query parameter 'limit' cannot reach the worker",
    ),
    "header_param": (
        doc(
            {
                "/h": {
                    "parameters": [{"name": "X-Trace", "in": "header", "schema": STR}],
                    **post(obj({"x": INT})),
                }
            }
        ),
        "#/paths/~1h/parameters/0: header parameter 'X-Trace' cannot reach the worker",
    ),
    "cookie_param": (
        doc(
            {
                "/c": post(
                    obj({"x": INT}), parameters=[{"name": "sid", "in": "cookie", "schema": STR}]
                )
            }
        ),
        "cookie parameter 'sid' cannot reach the worker",
    ),
    "array_body": (
        doc({"/batch": post({"type": "array", "items": INT})}),
        "#/paths/~1batch/post/requestBody/content/application~1json/schema: request body of type 'array'",
    ),
    "undeclared_path_param": (
        doc({"/x/{id}": post(obj({"x": INT}))}),
        "#/paths/~1x~1{id}/post: path parameter {id} is not declared",
    ),
    "object_path_param": (
        doc(
            {
                "/x/{id}": post(
                    obj({"x": INT}),
                    parameters=[
                        {"name": "id", "in": "path", "required": True, "schema": obj({"a": INT})}
                    ],
                )
            }
        ),
        "path parameter 'id': only strings, numbers, booleans and enums fit in a URL path",
    ),
    "not_keyword": (
        doc({"/n": post(obj({"x": {"not": INT}}))}),
        "#/paths/~1n/post/requestBody/content/application~1json/schema/properties/x/not: unsupported keyword 'not'",
    ),
    "text_body": (
        doc({"/t": post(STR, media="text/plain")}),
        "#/paths/~1t/post/requestBody/content: unsupported request media types ['text/plain']",
    ),
    "urlencoded_body": (
        doc({"/f": post(obj({"x": INT}), media="application/x-www-form-urlencoded")}),
        "application~1x-www-form-urlencoded/schema: application/x-www-form-urlencoded bodies cannot be sent",
    ),
    "swagger2": (
        {"swagger": "2.0", "info": {"title": "x", "version": "1"}, "paths": {}},
        "#/openapi: unsupported OpenAPI version '2.0'",
    ),
}
