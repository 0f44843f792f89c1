"""The editor's conversion routes over real HTTP (`/sdflow/convert`, `/sdflow/to-ui`): the engine's one
converter answers, so the browser queues exactly what `sdflow convert` writes. Also the canvas
library's files at `/lib/litegraph/` and the page shown when they are not installed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.workflow.api import ApiPrompt
from engine.workflow.convert import convert_workflow
from engine.workflow.to_ui import prompt_to_workflow
from http_api.state import WEB_ROOT, ServerOptions
from tests.conftest import COMFY_WORKFLOWS, REPO

EXAMPLES = REPO / "workflows"
UI_WORKFLOWS = sorted(COMFY_WORKFLOWS.glob("*.json")) + sorted(EXAMPLES.glob("*.json"))
LITEGRAPH = WEB_ROOT / "node_modules" / "@comfyorg" / "litegraph" / "dist"


@pytest.mark.parametrize("path", UI_WORKFLOWS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_ui_workflows_convert_as_the_engine_converts_them(server, server_runtime, path: Path) -> None:
    workflow = json.loads(path.read_text())
    expected = convert_workflow(workflow, server_runtime.registry.specs(server_runtime.folders)).to_json()
    for prefix in ("", "/api"):
        reply = server.post(f"{prefix}/sdflow/convert", {"workflow": workflow})
        assert reply.status == 200, reply.body[:500]
        assert reply.json() == {"prompt": expected}


@pytest.mark.parametrize("path", sorted((EXAMPLES / "api").glob("*.json")), ids=lambda p: p.name)
def test_api_prompts_become_ui_workflows_that_convert_back(server, server_runtime, path: Path) -> None:
    prompt = json.loads(path.read_text())
    specs = server_runtime.registry.specs(server_runtime.folders)
    reply = server.post("/api/sdflow/to-ui", {"prompt": prompt})
    assert reply.status == 200, reply.body[:500]
    workflow = reply.json()["workflow"]
    assert workflow == prompt_to_workflow(ApiPrompt.model_validate(prompt), specs)
    back = server.post("/sdflow/convert", {"workflow": workflow}).json()["prompt"]
    assert back == convert_workflow(workflow, specs).to_json()


def test_unknown_node_types_are_refused_with_their_names(server) -> None:
    workflow = json.loads((COMFY_WORKFLOWS / "default.json").read_text())
    workflow["nodes"][0]["type"] = "NoSuchLoader"
    reply = server.post("/sdflow/convert", {"workflow": workflow})
    assert reply.status == 400
    message = reply.json()["error"]["message"]
    assert "not installed" in message and "NoSuchLoader" in message and f"node {workflow['nodes'][0]['id']}" in message
    refused = server.post("/sdflow/to-ui", {"prompt": {"1": {"class_type": "NoSuchLoader", "inputs": {}}}})
    assert refused.status == 400 and "NoSuchLoader" in refused.json()["error"]["message"]


@pytest.mark.parametrize(
    ("path", "body", "reason"),
    [
        ("/sdflow/convert", {}, '"workflow"'),
        ("/sdflow/convert", {"workflow": [1, 2]}, '"workflow"'),
        ("/sdflow/convert", {"workflow": {"nodes": "no", "links": []}}, "malformed"),
        ("/sdflow/to-ui", {"prompt": {"1": {"inputs": {}}}}, "malformed"),
        ("/sdflow/to-ui", {"prompt": {"a": {"class_type": "SaveImage", "inputs": {}}}}, "integer node ids"),
    ],
)
def test_malformed_bodies_get_a_readable_400(server, path: str, body: dict, reason: str) -> None:
    reply = server.post(path, body)
    assert reply.status == 400
    assert reason in reply.json()["error"]["message"]


def test_non_json_body_is_refused(server) -> None:
    reply = server.call("POST", "/sdflow/convert", raw=b"{not json", headers={"Content-Type": "application/json"})
    assert reply.status == 400 and reply.json()["error"]["type"] == "invalid_json"


@pytest.mark.skipif(not (LITEGRAPH / "litegraph.es.js").is_file(), reason="web/node_modules is not installed (npm ci --prefix web)")
def test_canvas_library_is_served_from_node_modules(server) -> None:
    script = server.get("/lib/litegraph/litegraph.es.js")
    assert script.status == 200 and script.body == (LITEGRAPH / "litegraph.es.js").read_bytes()
    assert "javascript" in script.headers.get_content_type()
    assert server.get("/lib/litegraph/css/litegraph.css").status == 200
    assert server.get("/lib/litegraph/%2e%2e/package.json").status == 400
    assert server.get("/lib/litegraph/nope.js").status == 404
    page = server.get("/")
    assert page.status == 200 and b"/src/main.js" in page.body


def test_without_the_library_the_page_says_how_to_install_it(live, server_runtime, tmp_path) -> None:
    web_root = tmp_path / "web"
    web_root.mkdir()
    (web_root / "index.html").write_text('<!doctype html><title>editor</title><script type="module" src="/lib/litegraph/litegraph.es.js"></script>')
    server = live(server_runtime, ServerOptions(web_root=web_root))
    for path in ("/", "/index.html"):
        page = server.get(path)
        assert page.status == 200 and page.headers.get_content_type() == "text/html"
        assert b"make serve" in page.body and b"npm ci --prefix web" in page.body
    assert server.get("/lib/litegraph/litegraph.es.js").status == 404
