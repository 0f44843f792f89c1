"""Routes of the prompt queue: `/prompt`, `/queue`, `/history`, `/interrupt`, `/free`."""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from typing import Any, Callable

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.queue import DuplicatePromptError
from http_api.security import error_response
from http_api.state import state

routes = web.RouteTableDef()

#: deepest nesting of arrays and objects a JSON body may have; deeper values would hit Python's
#: recursion limit later, when they are converted, reported or stored (real workflows stay near 10)
MAX_JSON_DEPTH = 256


class BadRequest(Exception):
    """A request body or parameter the server cannot use; answered with 400."""

    def __init__(self, message: str, error_type: str = "invalid_request") -> None:
        super().__init__(message)
        self.error_type = error_type

    def response(self) -> web.Response:
        return error_response(400, self.error_type, str(self), node_errors={})


class PromptRequest(BaseModel):
    """The body of `POST /prompt` (ComfyUI's fields; others are ignored)."""

    model_config = ConfigDict(extra="ignore")

    prompt: Any = None
    client_id: str | None = Field(None, max_length=256)
    extra_data: dict[str, Any] = Field(default_factory=dict)
    front: bool = False
    number: float | None = Field(None, allow_inf_nan=False)
    prompt_id: str | None = Field(None, min_length=1, max_length=256)
    partial_execution_targets: list[str] | None = None


async def read_json(request: web.Request, default: Any = None) -> Any:
    """The request's JSON body; `default` when it is empty. Raises BadRequest when unreadable."""
    try:
        text = (await request.read()).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8 text", "invalid_json") from None
    if not text.strip():
        if default is None:
            raise BadRequest("the request has no JSON body")
        return default
    too_deep = BadRequest(f"the body nests arrays and objects more than {MAX_JSON_DEPTH} levels deep", "invalid_json")
    try:
        body = json.loads(text)
    except RecursionError:
        raise too_deep from None
    except ValueError as exc:
        raise BadRequest(f"the body is not valid JSON: {str(exc)[:200]}", "invalid_json") from None
    if _nests_deeper_than(body, MAX_JSON_DEPTH):
        raise too_deep
    return body


def _nests_deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects in `value` nest more than `limit` levels (walked without recursion)."""
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        container, depth = stack.pop()
        if depth > limit:
            return True
        children = container.values() if isinstance(container, dict) else container
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


async def read_object(request: web.Request, default: dict[str, Any] | None = None) -> dict[str, Any]:
    body = await read_json(request, default)
    if not isinstance(body, dict):
        raise BadRequest(f"the body must be a JSON object, not {type(body).__name__}")
    return body


def _describe(error: ValidationError) -> str:
    return "; ".join(f"field '{'.'.join(str(p) for p in e['loc'])}': {e['msg']}" for e in error.errors())


def _number(value: float) -> int | float:
    return int(value) if math.isfinite(value) and value.is_integer() else value


@routes.get("/prompt")
async def get_prompt(request: web.Request) -> web.Response:
    return web.json_response({"exec_info": {"queue_remaining": state(request).queue.remaining()}})


@routes.post("/prompt")
async def post_prompt(request: web.Request) -> web.Response:
    try:
        body = await read_object(request)
        try:
            submitted = PromptRequest.model_validate(body)
        except ValidationError as exc:
            raise BadRequest(_describe(exc)) from None
        if submitted.prompt is None:
            raise BadRequest("no prompt was provided", "no_prompt")
    except BadRequest as exc:
        return exc.response()
    server = state(request)
    extra_data = dict(submitted.extra_data)
    if submitted.client_id is not None:
        extra_data["client_id"] = submitted.client_id
    targets = submitted.partial_execution_targets
    validation = await asyncio.to_thread(server.runtime.executor.validate, submitted.prompt, targets, extra_data)
    if not validation.ok:
        return web.json_response({"error": validation.error, "node_errors": validation.node_errors}, status=400)
    prompt_id = submitted.prompt_id or str(uuid.uuid4())
    try:
        item = await asyncio.to_thread(
            server.queue.put, submitted.prompt, prompt_id, extra_data, validation.outputs, submitted.number, submitted.front
        )
    except DuplicatePromptError as exc:
        return BadRequest(str(exc), "duplicate_prompt_id").response()
    return web.json_response({"prompt_id": item.prompt_id, "number": _number(item.number), "node_errors": validation.node_errors})


@routes.get("/queue")
async def get_queue(request: web.Request) -> web.Response:
    queue = state(request).queue
    return web.json_response({"queue_running": [i.row() for i in queue.running()], "queue_pending": [i.row() for i in queue.pending()]})


def _ids(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"'{key}' must be a list of prompt ids")
    return value


async def _clear_or_delete(request: web.Request, clear: Callable[[], Any], delete: Callable[[list[str]], Any]) -> web.Response:
    """A `{"clear": true}` and/or `{"delete": [ids]}` request, as POST /queue and /history take."""
    try:
        body = await read_object(request)
        ids = _ids(body, "delete")
    except BadRequest as exc:
        return exc.response()
    if body.get("clear") is True:
        await asyncio.to_thread(clear)
    if ids:
        await asyncio.to_thread(delete, ids)
    return web.Response(status=200)


@routes.post("/queue")
async def post_queue(request: web.Request) -> web.Response:
    queue = state(request).queue
    return await _clear_or_delete(request, queue.clear, queue.delete)


def _int_param(request: web.Request, name: str, default: int | None) -> int | None:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise BadRequest(f"query parameter '{name}' must be an integer, got {text[:50]!r}") from None


@routes.get("/history")
async def get_history(request: web.Request) -> web.Response:
    try:
        max_items = _int_param(request, "max_items", None)
        offset = _int_param(request, "offset", -1)
    except BadRequest as exc:
        return exc.response()
    assert offset is not None
    return web.json_response(state(request).queue.history(max_items, offset))


@routes.get("/history/{prompt_id}")
async def get_history_entry(request: web.Request) -> web.Response:
    prompt_id = request.match_info["prompt_id"]
    entry = state(request).queue.history_entry(prompt_id)
    return web.json_response({} if entry is None else {prompt_id: entry})


@routes.post("/history")
async def post_history(request: web.Request) -> web.Response:
    queue = state(request).queue
    return await _clear_or_delete(request, queue.clear_history, queue.delete_history)


@routes.post("/interrupt")
async def post_interrupt(request: web.Request) -> web.Response:
    """Stop the running prompt; with `{"prompt_id"}` only if that prompt is the one running."""
    try:
        body = await read_object(request, default={})
    except BadRequest as exc:
        return exc.response()
    prompt_id = body.get("prompt_id")
    state(request).worker.interrupt(prompt_id if isinstance(prompt_id, str) else None)
    return web.Response(status=200)


def _flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("true", "1"))


@routes.post("/free")
async def post_free(request: web.Request) -> web.Response:
    """`{"unload_models": bool, "free_memory": bool}` as JSON or form data; applied between prompts."""
    try:
        if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            body: dict[str, Any] = dict(await request.post())
        else:
            body = await read_object(request, default={})
    except BadRequest as exc:
        return exc.response()
    state(request).worker.request_free(_flag(body.get("unload_models")), _flag(body.get("free_memory")))
    return web.Response(status=200)
