"""Editing and queue control in the editor: the queue panel's cancel and interrupt, undo/redo of a
deletion, bypass and mute, and a plugin pack's editor script."""

from __future__ import annotations

from tests.browser import editor


def select_node(page, node_id: int) -> None:
    """Clicks the node's title bar (selecting only it) and leaves the keyboard focus on the canvas."""
    editor.next_frame(page)
    title = page.evaluate("(id) => { const n = window.app.graph.getNodeById(id); return [n.pos[0] + 40, n.pos[1] - 15]; }", node_id)
    page.mouse.click(*editor.to_page(page, title))
    assert page.evaluate("Object.keys(window.app.canvas.selected_nodes).map(Number)") == [node_id]


def queued_prompts(page) -> list[dict]:
    """Starts recording the bodies the editor posts to /prompt; returns the list they go in."""
    bodies: list[dict] = []
    page.on("request", lambda request: bodies.append(request.post_data_json)
            if request.method == "POST" and request.url.endswith("/api/prompt") else None)
    return bodies


def shrink(page, steps: int = 2) -> tuple[int, int]:
    """Makes the default workflow small (64×64, `steps` steps); returns the sampler's and the latent's ids."""
    (sampler,) = editor.nodes_of_type(page, "KSampler")
    (latent,) = editor.nodes_of_type(page, "EmptyLatentImage")
    editor.set_number(page, latent, "width", 64)
    editor.set_number(page, latent, "height", 64)
    editor.set_number(page, sampler, "steps", steps)
    return sampler, latent


def test_queue_panel_cancels_the_pending_prompt_and_interrupts_the_running_one(page, server) -> None:
    sampler, _ = shrink(page, steps=10000)  # runs until interrupted
    editor.capture_events(page)
    editor.menu(page, "View", "Queue")
    page.click("#queue-button")
    editor.wait_for_event(page, "progress")
    page.click("#queue-button")
    queued = editor.wait_for_event(page, "prompt-queued", count=2)
    first, second = (detail["promptId"] for _, detail, _ in queued)

    pending = page.locator(f'#sdflow-queue-panel li.sdflow-queue-pending[data-prompt-id="{second}"]')
    running = page.locator(f'#sdflow-queue-panel li.sdflow-queue-running[data-prompt-id="{first}"]')
    pending.wait_for()
    running.wait_for()
    assert page.locator("#sdflow-queue-panel li").count() == 2
    assert running.locator(".sdflow-queue-step").inner_text().startswith("KSampler: ")
    pending.get_by_role("button", name="Cancel").click()
    pending.wait_for(state="detached")
    assert editor.api(server, "/queue")["queue_pending"] == []
    assert editor.node_info(page, sampler)["running"]

    running.get_by_role("button", name="Interrupt").click()
    ((_, interrupted, view),) = editor.wait_for_event(page, "execution_interrupted")
    assert interrupted["prompt_id"] == first and interrupted["node_id"] == str(sampler)
    assert view["running"] == [] and view["bar"] == "0%"
    page.locator("#sdflow-queue-panel .sdflow-empty", has_text="The queue is empty.").wait_for()
    page.locator("#toasts .toast-warning", has_text="interrupted").wait_for()
    history = editor.api(server, "/history")
    assert history[first]["status"]["messages"][-1][0] == "execution_interrupted"
    assert second not in history
    done = [view["progress"].get(str(sampler)) for kind, _, view in editor.events(page) if kind == "progress"]
    assert 0 < max(done) < 0.5


def without_order(nodes: list[dict]) -> dict[int, dict]:
    """Nodes by id, without their execution order (a loaded graph keeps the saved one until it
    changes) and their place in the list (a clicked node comes to the front)."""
    return {node["id"]: {key: value for key, value in node.items() if key != "order"} for node in nodes}


def test_undo_and_redo_of_a_node_deletion(page) -> None:
    before = page.evaluate("window.app.serializeWorkflow()")
    (decode,) = editor.nodes_of_type(page, "VAEDecode")
    select_node(page, decode)
    page.keyboard.press("Delete")
    page.wait_for_function("(id) => !window.app.graph.getNodeById(id)", arg=decode)
    after_delete = page.evaluate("window.app.serializeWorkflow()")
    assert len(after_delete["nodes"]) == len(before["nodes"]) - 1
    assert len(after_delete["links"]) == len(before["links"]) - 3  # samples, vae in; IMAGE out

    page.keyboard.press("Control+z")
    page.wait_for_function("(id) => window.app.graph.getNodeById(id)", arg=decode)
    restored = page.evaluate("window.app.serializeWorkflow()")
    assert without_order(restored["nodes"]) == without_order(before["nodes"]) and restored["links"] == before["links"]

    page.keyboard.press("Control+y")
    page.wait_for_function("(id) => !window.app.graph.getNodeById(id)", arg=decode)
    assert page.evaluate("window.app.serializeWorkflow()")["links"] == after_delete["links"]
    # and once more back, through the Edit menu
    editor.menu(page, "Edit", "Undo (Ctrl+Z)")
    page.wait_for_function("(id) => window.app.graph.getNodeById(id)", arg=decode)
    assert without_order(page.evaluate("window.app.serializeWorkflow()")["nodes"]) == without_order(before["nodes"])


def test_bypass_and_mute_change_the_mode_and_the_queued_prompt(page, server) -> None:
    sampler, latent = shrink(page)
    (decode,) = editor.nodes_of_type(page, "VAEDecode")
    (save,) = editor.nodes_of_type(page, "SaveImage")
    posted = queued_prompts(page)
    editor.capture_events(page)

    # bypassed, the sampler is left out and its latent input passes through to the decoder; it runs
    select_node(page, sampler)
    page.keyboard.press("Control+b")
    assert editor.node_info(page, sampler)["mode"] == 4
    page.keyboard.press("Control+Enter")
    editor.wait_for_event(page, "execution_success")
    prompt = posted[-1]["prompt"]
    assert str(sampler) not in prompt and prompt[str(decode)]["inputs"]["samples"] == [str(latent), 0]
    assert not [e for e in editor.events(page, "executing") if e[1]["node"] == str(sampler)]
    assert editor.node_info(page, save)["image_kind"] == "output"

    # Ctrl+B again: it runs again
    page.keyboard.press("Control+b")
    assert editor.node_info(page, sampler)["mode"] == 0
    page.keyboard.press("Control+Enter")
    editor.wait_for_event(page, "execution_success", count=2)
    assert posted[-1]["prompt"][str(decode)]["inputs"]["samples"] == [str(sampler), 0]

    # muted, the only output is left out: the server has nothing to run and says so
    select_node(page, save)
    page.keyboard.press("Control+m")
    assert editor.node_info(page, save)["mode"] == 2
    assert {n["id"]: n["mode"] for n in page.evaluate("window.app.serializeWorkflow()")["nodes"]}[save] == 2
    page.keyboard.press("Control+Enter")
    page.wait_for_function("(n) => document.querySelectorAll('#toasts .toast-error').length > 0", arg=None)
    assert str(save) not in posted[-1]["prompt"] and set(posted[-1]["prompt"]) == {str(n) for n in editor.node_ids(page) if n != save}
    assert "output" in page.locator("#toasts .toast-error").last.inner_text().lower()
    page.keyboard.press("Control+m")
    assert editor.node_info(page, save)["mode"] == 0


def test_the_example_plugin_packs_editor_script_is_loaded(plugin_page, plugin_server) -> None:
    page = plugin_page
    assert "/extensions/example_pack/last_output.js" in editor.api(plugin_server, "/extensions")
    assert "example_pack.last_output" in page.evaluate("window.sdflow.extensions")
    # its nodes are in the library, and its menu entry works
    assert page.evaluate("'ImageBrightnessContrast' in window.app.objectInfo")
    page.fill("#library-search", "brightness")
    page.locator('.library-node[data-type="ImageBrightnessContrast"]').wait_for()
    editor.menu(page, "Example pack", "Last output")
    page.locator("#toasts .toast", has_text="Nothing has been generated yet.").wait_for()
    # its event listener sees what runs: the model-free template from the Templates menu
    editor.capture_events(page)
    editor.menu(page, "Templates", "model free demo")
    page.wait_for_function("window.app.workflowName === 'model_free_demo'")
    page.click("#queue-button")
    ((_, executed, _),) = editor.wait_for_event(page, "executed")
    names = [image["filename"] for image in executed["output"]["images"]]
    assert names and all(name.startswith("sdflow_demo_") for name in names)
    editor.menu(page, "Example pack", "Last output")
    page.locator("#toasts .toast", has_text=f"Last output: {', '.join(names)}").wait_for()


def test_redo_works_after_undoing_a_change_not_recorded_yet(page) -> None:
    """A change the history has not recorded yet (here: a node grown by code, as showing an output
    image grows it, with no click or key after it) is recorded by Ctrl+Z itself and undone; Ctrl+Y
    must bring it back."""
    (save,) = editor.nodes_of_type(page, "SaveImage")
    size = editor.node_info(page, save)["size"]
    page.evaluate("(id) => window.app.graph.getNodeById(id).setSize([400, 420])", save)
    page.locator("#graph-canvas").focus()
    page.keyboard.press("Control+z")
    page.wait_for_function("([id, w]) => window.app.graph.getNodeById(id)?.size[0] === w", arg=[save, size[0]])
    page.keyboard.press("Control+y")
    page.wait_for_function("(id) => window.app.graph.getNodeById(id)?.size[0] === 400", arg=save, timeout=3000)
    assert editor.node_info(page, save)["size"] == [400, 420]
