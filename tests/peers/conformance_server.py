"""A test upstream on the official MCP Python SDK (`mcp` 2.3, low-level `Server`).

It implements every tool, resource, resource template, prompt and completion that the
server scenarios of `@modelcontextprotocol/conformance` call by name, plus three tools
for keygate's own end-to-end tests:

- `slow_answer {"seconds": N}`: silent for N seconds (no progress, no SSE bytes), then
  answers `slept N`.
- `notify_later {"seconds": N, "uri": U}`: answers at once, then after N seconds sends
  `notifications/resources/updated` for U on the session's standalone GET stream.
- `payload_size {"data": S}`: answers the length of S (for large request bodies).

Streamable HTTP on `127.0.0.1:PORT/mcp` (PORT from argv[1], else `$PEER_PORT`, else 0 =
any free port). It is stateful for the 2025 revisions (sessions, GET stream, an
in-memory event store so `test_reconnection` can close a stream and resume it) and
serves the stateless 2026-07-28 revision on the same endpoint (the SDK routes by
`MCP-Protocol-Version`). DNS-rebinding protection is the SDK's default for loopback.

Prints `conformance server listening on http://127.0.0.1:PORT/mcp` on stdout once the
socket is bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import sys
import warnings
from typing import Any

import mcp_types as types
import uvicorn
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http import EventMessage, EventStore

warnings.simplefilter("ignore")  # the SDK warns about 2025-era features (logging, sampling)

# A 1x1 red PNG and a tiny WAV (44-byte header + 2 samples of silence).
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
WAV = "UklGRigAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQQAAACAgICA"


class MemoryEventStore(EventStore):
    """Keeps every event in memory so a closed SSE stream can be resumed (SEP-1699)."""

    def __init__(self) -> None:
        self._events: list[tuple[str, str, Any]] = []  # (event id, stream id, message)
        self._ids = itertools.count(1)

    async def store_event(self, stream_id: str, message: Any) -> str:
        event_id = f"{stream_id}:{next(self._ids)}"
        self._events.append((event_id, stream_id, message))
        return event_id

    async def replay_events_after(self, last_event_id: str, send_callback: Any) -> str | None:
        index = next((i for i, (eid, _, _) in enumerate(self._events) if eid == last_event_id), None)
        if index is None:
            return None
        stream_id = self._events[index][1]
        for event_id, sid, message in self._events[index + 1 :]:
            if sid == stream_id and message is not None:
                await send_callback(EventMessage(message, event_id))
        return stream_id


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool(name: str, description: str, properties: dict[str, Any] | None = None, required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties or {}}
    if required:
        schema["required"] = required
    return {"name": name, "description": description, "inputSchema": schema}


TOOLS = [
    tool("test_simple_text", "Returns simple text"),
    tool("test_image_content", "Returns an image"),
    tool("test_audio_content", "Returns audio"),
    tool("test_embedded_resource", "Returns an embedded resource"),
    tool("test_multiple_content_types", "Returns text, image and resource"),
    tool("test_tool_with_logging", "Sends three log messages"),
    tool("test_error_handling", "Always fails"),
    tool("test_tool_with_progress", "Reports progress 0, 50, 100"),
    tool("test_sampling", "Asks the client to sample", {"prompt": {"type": "string"}}, ["prompt"]),
    tool("test_elicitation", "Asks the user", {"message": {"type": "string"}}, ["message"]),
    tool("test_elicitation_sep1034_defaults", "Elicitation with defaults (SEP-1034)"),
    tool("test_elicitation_sep1330_enums", "Elicitation with enum schemas (SEP-1330)"),
    {
        "name": "json_schema_2020_12_tool",
        "description": "Tool with JSON Schema 2020-12 features",
        "inputSchema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "$defs": {
                "address": {
                    "type": "object",
                    "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
                }
            },
            "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
            "additionalProperties": False,
        },
    },
    tool("test_reconnection", "Closes its SSE stream mid-call, then answers (SEP-1699)"),
    tool("slow_answer", "Silent for `seconds`, then answers", {"seconds": {"type": "number"}}, ["seconds"]),
    tool(
        "notify_later",
        "Answers now; after `seconds` sends resources/updated for `uri` on the GET stream",
        {"seconds": {"type": "number"}, "uri": {"type": "string"}},
        ["seconds", "uri"],
    ),
    tool("payload_size", "Answers the length of `data`", {"data": {"type": "string"}}, ["data"]),
]

SEP1034_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "User name", "default": "John Doe"},
        "age": {"type": "integer", "description": "User age", "default": 30},
        "score": {"type": "number", "description": "User score", "default": 95.5},
        "status": {
            "type": "string",
            "description": "User status",
            "enum": ["active", "inactive", "pending"],
            "default": "active",
        },
        "verified": {"type": "boolean", "description": "Verification status", "default": True},
    },
}

SEP1330_SCHEMA = {
    "type": "object",
    "properties": {
        "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
        "titledSingle": {
            "type": "string",
            "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"},
            ],
        },
        "legacyEnum": {
            "type": "string",
            "enum": ["opt1", "opt2", "opt3"],
            "enumNames": ["Option One", "Option Two", "Option Three"],
        },
        "untitledMulti": {"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
        "titledMulti": {
            "type": "array",
            "items": {
                "anyOf": [
                    {"const": "value1", "title": "First Choice"},
                    {"const": "value2", "title": "Second Choice"},
                    {"const": "value3", "title": "Third Choice"},
                ]
            },
        },
    },
}

# Background tasks (notify_later) are kept here so they are not garbage-collected.
BACKGROUND: set[asyncio.Task[None]] = set()


async def elicit(ctx: Any, message: str, schema: dict[str, Any]) -> dict[str, Any]:
    answer = await ctx.session.elicit_form(message, schema, related_request_id=ctx.request_id)
    return {"content": [text(f"Elicitation completed: action={answer.action}, content={answer.content}")]}


async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> dict[str, Any]:
    name = params.name
    args = params.arguments or {}
    if name == "test_simple_text":
        return {"content": [text("This is a simple text response for testing.")]}
    if name == "test_image_content":
        return {"content": [{"type": "image", "data": PNG, "mimeType": "image/png"}]}
    if name == "test_audio_content":
        return {"content": [{"type": "audio", "data": WAV, "mimeType": "audio/wav"}]}
    if name == "test_embedded_resource":
        resource = {
            "uri": "test://embedded-resource",
            "mimeType": "text/plain",
            "text": "This is an embedded resource content.",
        }
        return {"content": [{"type": "resource", "resource": resource}]}
    if name == "test_multiple_content_types":
        resource = {
            "uri": "test://mixed-content-resource",
            "mimeType": "application/json",
            "text": '{"test":"data","value":123}',
        }
        return {
            "content": [
                text("Multiple content types test:"),
                {"type": "image", "data": PNG, "mimeType": "image/png"},
                {"type": "resource", "resource": resource},
            ]
        }
    if name == "test_tool_with_logging":
        for i, message in enumerate(["Tool execution started", "Tool processing data", "Tool execution completed"]):
            if i:
                await asyncio.sleep(0.05)
            await ctx.session.send_log_message("info", message, related_request_id=ctx.request_id)
        return {"content": [text("Tool with logging executed successfully")]}
    if name == "test_error_handling":
        return {"isError": True, "content": [text("This tool intentionally returns an error for testing")]}
    if name == "test_tool_with_progress":
        for i, value in enumerate([0, 50, 100]):
            if i:
                await asyncio.sleep(0.05)
            await ctx.session.report_progress(value, 100)
        return {"content": [text("Tool with progress executed successfully")]}
    if name == "test_sampling":
        answer = await ctx.session.create_message(
            messages=[types.SamplingMessage(role="user", content=types.TextContent(type="text", text=args["prompt"]))],
            max_tokens=100,
            related_request_id=ctx.request_id,
        )
        content = answer.content
        reply = getattr(content, "text", None) or str(content)
        return {"content": [text(f"LLM response: {reply}")]}
    if name == "test_elicitation":
        schema = {
            "type": "object",
            "properties": {
                "username": {"type": "string", "description": "User's response"},
                "email": {"type": "string", "description": "User's email address"},
            },
            "required": ["username", "email"],
        }
        answer = await ctx.session.elicit_form(args["message"], schema, related_request_id=ctx.request_id)
        return {"content": [text(f"User response: action={answer.action}, content={answer.content}")]}
    if name == "test_elicitation_sep1034_defaults":
        return await elicit(ctx, "Please review and update the form fields with defaults", SEP1034_SCHEMA)
    if name == "test_elicitation_sep1330_enums":
        return await elicit(ctx, "Please select options from the enum fields", SEP1330_SCHEMA)
    if name == "json_schema_2020_12_tool":
        return {"content": [text(f"JSON Schema 2020-12 tool called with {args}")]}
    if name == "test_reconnection":
        # Close this request's SSE stream mid-call; the client resumes with Last-Event-ID
        # and gets the answer from the event store.
        await asyncio.sleep(0.1)
        if ctx.close_sse_stream is not None:
            await ctx.close_sse_stream()
        await asyncio.sleep(0.2)
        return {"content": [text("Reconnection test completed successfully")]}
    if name == "slow_answer":
        seconds = float(args["seconds"])
        await asyncio.sleep(seconds)
        return {"content": [text(f"slept {seconds:g}")]}
    if name == "notify_later":
        seconds, uri, session = float(args["seconds"]), str(args["uri"]), ctx.session

        async def later() -> None:
            await asyncio.sleep(seconds)
            await session.send_resource_updated(uri)

        task = asyncio.get_running_loop().create_task(later())
        BACKGROUND.add(task)
        task.add_done_callback(BACKGROUND.discard)
        return {"content": [text(f"will notify {uri} in {seconds:g} s")]}
    if name == "payload_size":
        return {"content": [text(str(len(args["data"])))], "structuredContent": {"length": len(args["data"])}}
    return {"isError": True, "content": [text(f"unknown tool {name}")]}


async def list_tools(ctx: Any, params: Any) -> dict[str, Any]:
    return {"tools": TOOLS}


RESOURCES = [
    {
        "uri": "test://static-text",
        "name": "static-text",
        "description": "A static text resource",
        "mimeType": "text/plain",
    },
    {
        "uri": "test://static-binary",
        "name": "static-binary",
        "description": "A static binary resource (PNG)",
        "mimeType": "image/png",
    },
    {
        "uri": "test://watched-resource",
        "name": "watched-resource",
        "description": "A resource clients may subscribe to",
        "mimeType": "text/plain",
    },
]


async def list_resources(ctx: Any, params: Any) -> dict[str, Any]:
    return {"resources": RESOURCES}


async def list_resource_templates(ctx: Any, params: Any) -> dict[str, Any]:
    return {
        "resourceTemplates": [
            {
                "uriTemplate": "test://template/{id}/data",
                "name": "template-data",
                "description": "Data for an id",
                "mimeType": "application/json",
            }
        ]
    }


async def read_resource(ctx: Any, params: types.ReadResourceRequestParams) -> dict[str, Any]:
    uri = str(params.uri)
    if uri == "test://static-text":
        contents = {"uri": uri, "mimeType": "text/plain", "text": "This is the content of the static text resource."}
    elif uri == "test://static-binary":
        contents = {"uri": uri, "mimeType": "image/png", "blob": PNG}
    elif uri == "test://watched-resource":
        contents = {"uri": uri, "mimeType": "text/plain", "text": "watched"}
    elif uri.startswith("test://template/") and uri.endswith("/data"):
        ident = uri[len("test://template/") : -len("/data")]
        body = '{"id":"%s","templateTest":true,"data":"Data for ID: %s"}' % (ident, ident)
        contents = {"uri": uri, "mimeType": "application/json", "text": body}
    else:
        raise ValueError(f"unknown resource {uri}")
    return {"contents": [contents]}


SUBSCRIBED: set[str] = set()


async def subscribe(ctx: Any, params: types.SubscribeRequestParams) -> dict[str, Any]:
    SUBSCRIBED.add(str(params.uri))
    return {}


async def unsubscribe(ctx: Any, params: types.UnsubscribeRequestParams) -> dict[str, Any]:
    SUBSCRIBED.discard(str(params.uri))
    return {}


PROMPTS = [
    {"name": "test_simple_prompt", "description": "A simple prompt without arguments"},
    {
        "name": "test_prompt_with_arguments",
        "description": "A prompt with two arguments",
        "arguments": [
            {"name": "arg1", "description": "First test argument", "required": True},
            {"name": "arg2", "description": "Second test argument", "required": True},
        ],
    },
    {
        "name": "test_prompt_with_embedded_resource",
        "description": "A prompt embedding a resource",
        "arguments": [{"name": "resourceUri", "description": "URI of the resource to embed", "required": True}],
    },
    {"name": "test_prompt_with_image", "description": "A prompt with an image"},
]


async def list_prompts(ctx: Any, params: Any) -> dict[str, Any]:
    return {"prompts": PROMPTS}


async def get_prompt(ctx: Any, params: types.GetPromptRequestParams) -> dict[str, Any]:
    args = params.arguments or {}
    if params.name == "test_simple_prompt":
        messages = [{"role": "user", "content": text("This is a simple prompt for testing.")}]
    elif params.name == "test_prompt_with_arguments":
        line = f"Prompt with arguments: arg1='{args.get('arg1')}', arg2='{args.get('arg2')}'"
        messages = [{"role": "user", "content": text(line)}]
    elif params.name == "test_prompt_with_embedded_resource":
        resource = {
            "uri": args.get("resourceUri", "test://example-resource"),
            "mimeType": "text/plain",
            "text": "Embedded resource content for testing.",
        }
        messages = [
            {"role": "user", "content": {"type": "resource", "resource": resource}},
            {"role": "user", "content": text("Please process the embedded resource above.")},
        ]
    elif params.name == "test_prompt_with_image":
        messages = [
            {"role": "user", "content": {"type": "image", "data": PNG, "mimeType": "image/png"}},
            {"role": "user", "content": text("Please analyze the image above.")},
        ]
    else:
        raise ValueError(f"unknown prompt {params.name}")
    return {"messages": messages}


async def complete(ctx: Any, params: types.CompleteRequestParams) -> dict[str, Any]:
    prefix = params.argument.value
    values = [v for v in ["paris", "park", "party", "test", "testValue1"] if v.startswith(prefix)]
    return {"completion": {"values": values, "total": len(values), "hasMore": False}}


async def set_level(ctx: Any, params: types.SetLevelRequestParams) -> dict[str, Any]:
    return {}


def typed(handler: Any, result_type: Any) -> Any:
    """The handler with its JSON answer validated into the SDK's result type (the
    2026-07-28 path accepts typed results only)."""

    async def wrapped(ctx: Any, params: Any) -> Any:
        return result_type.model_validate(await handler(ctx, params))

    return wrapped


def build() -> Server[Any]:
    return Server(
        "keygate-conformance-upstream",
        version="1.0.0",
        on_list_tools=typed(list_tools, types.ListToolsResult),
        on_call_tool=typed(call_tool, types.CallToolResult),
        on_list_resources=typed(list_resources, types.ListResourcesResult),
        on_list_resource_templates=typed(list_resource_templates, types.ListResourceTemplatesResult),
        on_read_resource=typed(read_resource, types.ReadResourceResult),
        on_subscribe_resource=typed(subscribe, types.EmptyResult),
        on_unsubscribe_resource=typed(unsubscribe, types.EmptyResult),
        on_list_prompts=typed(list_prompts, types.ListPromptsResult),
        on_get_prompt=typed(get_prompt, types.GetPromptResult),
        on_completion=typed(complete, types.CompleteResult),
        on_set_logging_level=typed(set_level, types.EmptyResult),
    )


def main() -> None:
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PEER_PORT", "0"))
    app = build().streamable_http_app(
        event_store=MemoryEventStore(),
        retry_interval=500,
        host="127.0.0.1",
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit TCP_NODELAY from the listener. Without it every answer on a
    # kept-alive connection after the first waited ~40 ms (Nagle against delayed ACKs),
    # which would be charged to whoever calls this server.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    bound = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1))
    print(f"conformance server listening on http://127.0.0.1:{bound}/mcp", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])


if __name__ == "__main__":
    main()
