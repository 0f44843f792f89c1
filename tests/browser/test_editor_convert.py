"""The editor queues the same API prompt `sdflow convert` makes of a workflow: the body the editor
posts to /prompt, caught on its way, against the engine's converter run here with the server's
node specs (the server lacks none of the shared workflows' node types)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.runtime import Runtime, Settings
from engine.workflow.convert import convert_workflow
from tests.browser import editor
from tests.conftest import COMFY_WORKFLOWS, REPO

SHARED = sorted(COMFY_WORKFLOWS.glob("*.json"))
EXAMPLES = sorted((REPO / "workflows").glob("*.json"))


@pytest.fixture(scope="module")
def specs(server):
    """The node specs `sdflow convert --base-dir <the server's> --no-plugins` converts with."""
    runtime = Runtime(Settings(base_dir=server.base, load_plugins=False))
    return runtime.registry.specs(runtime.folders)


def catch_prompts(page) -> None:
    """Catches what the editor posts to /prompt (the server never sees it, so nothing runs) and
    answers as the server does when it queues a prompt."""
    count = iter(range(1, 1000))

    def answer(route) -> None:
        number = next(count)
        route.fulfill(status=200, content_type="application/json",
                      body=json.dumps({"prompt_id": f"caught-{number}", "number": number, "node_errors": {}}))

    page.route("**/api/prompt", answer)


def queued_prompt(page, path: Path) -> dict:
    """Loads `path` through the Load menu, queues it with Ctrl+Enter; the body the editor posted."""
    editor.load_file(page, path)
    page.locator("#graph-canvas").focus()
    with page.expect_request(lambda request: request.method == "POST" and request.url.endswith("/api/prompt"), timeout=10_000) as request:
        page.keyboard.press("Control+Enter")
    # the editor carries on once the answer came (control_after_generate, `prompt-queued`)
    page.wait_for_function("document.getElementById('queue-button').disabled === false")
    return request.value.post_data_json


def test_the_editor_queues_what_sdflow_convert_makes_of_each_shared_workflow(page, specs) -> None:
    catch_prompts(page)
    assert page.evaluate("Object.keys(window.app.objectInfo).length") == len(specs)
    different = {}
    for path in SHARED:
        body = queued_prompt(page, path)
        expected = convert_workflow(json.loads(path.read_text()), specs).to_json()
        if body["prompt"] != expected:
            different[path.name] = {"editor": body["prompt"], "sdflow convert": expected}
        assert body["client_id"] == page.evaluate("window.app.api.clientId")
        assert body["extra_data"]["extra_pnginfo"]["workflow"]["nodes"]
    assert different == {}


def test_the_editor_queues_the_api_copies_of_the_example_workflows(page, specs) -> None:
    catch_prompts(page)
    different = {}
    for path in EXAMPLES:
        body = queued_prompt(page, path)
        expected = convert_workflow(json.loads(path.read_text()), specs).to_json()
        api_copy = path.parent / "api" / path.name
        if api_copy.exists():
            assert json.loads(api_copy.read_text()) == expected, f"workflows/api/{path.name} is out of date"
        if body["prompt"] != expected:
            different[path.name] = {"editor": body["prompt"], "sdflow convert": expected}
    assert different == {}
