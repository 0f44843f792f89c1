"""Building, queueing and watching workflows in the editor, in a real browser against a real server."""

from __future__ import annotations

import json

from PIL import Image

from tests.browser import editor
from tests.conftest import REPO

CHECKPOINT = "sdflow-tiny-sd15.safetensors"


def clear_canvas(page) -> None:
    """Selects every node (Ctrl+A on the canvas) and deletes them (Delete)."""
    page.locator("#graph-canvas").focus()
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    assert editor.node_ids(page) == []


def set_view(page, scale: float, offset: tuple[float, float]) -> None:
    page.evaluate("([scale, offset]) => { const {ds} = window.app.canvas; ds.scale = scale; ds.offset = offset; window.app.canvas.setDirty(true, true); }",
                  [scale, list(offset)])


def assert_image_shown(page, node_id: int, kind: str, size: tuple[int, int] | None = None) -> list[str]:
    """The node shows images of `kind`, loaded (of `size` when given); returns their URLs."""
    page.wait_for_function(
        "([id, kind]) => { const n = window.app.graph.getNodeById(id); return n.imageKind === kind && n.images?.length && n.images.every((i) => i.complete && i.naturalWidth); }",
        arg=[node_id, kind],
    )
    if size:
        sizes = page.evaluate("(id) => window.app.graph.getNodeById(id).images.map((i) => [i.naturalWidth, i.naturalHeight])", node_id)
        assert sizes == [list(size)] * len(sizes)
    return editor.node_info(page, node_id)["images"]


def test_build_txt2img_by_mouse_and_keyboard_queue_it_and_see_the_image(page, server) -> None:
    clear_canvas(page)
    set_view(page, 0.8, (0, 0))
    at = lambda x, y: editor.to_page(page, [x, y])
    # nodes from the canvas search box (double-click, type, arrows, Enter) and from the library panel
    ckpt = editor.add_node_by_search(page, "checkpoint loader", "CheckpointLoaderSimple", at(20, 40))
    positive = editor.add_node_by_search(page, "clip text", "CLIPTextEncode", at(300, 40))
    negative = editor.add_node_from_library(page, "cliptextencode", "CLIPTextEncode")
    editor.move_node(page, negative, (300, 200))
    latent = editor.add_node_by_search(page, "empty latent", "EmptyLatentImage", at(20, 220))
    sampler = editor.add_node_by_search(page, "ksampler", "KSampler", at(580, 40))
    decode = editor.add_node_by_search(page, "vae decode", "VAEDecode", at(860, 40))
    save = editor.add_node_by_search(page, "save image", "SaveImage", at(860, 180))
    # links dragged from output sockets to input sockets
    for source, output, target, input_name in [
        (ckpt, "MODEL", sampler, "model"), (ckpt, "CLIP", positive, "clip"), (ckpt, "CLIP", negative, "clip"),
        (positive, "CONDITIONING", sampler, "positive"), (negative, "CONDITIONING", sampler, "negative"),
        (latent, "LATENT", sampler, "latent_image"), (sampler, "LATENT", decode, "samples"), (ckpt, "VAE", decode, "vae"),
        (decode, "IMAGE", save, "images"),
    ]:
        editor.connect(page, source, output, target, input_name)
    # a link between sockets of different types is refused
    before = editor.node_info(page, sampler)["inputs"][0]["link"]
    editor.drag(page, editor.slot_point(page, ckpt, "output", "VAE"), editor.slot_point(page, sampler, "input", "model"))
    assert editor.node_info(page, sampler)["inputs"][0]["link"] == before
    # widget values through the widgets: a combo's menu, number prompts, text areas
    editor.set_combo(page, ckpt, "ckpt_name", CHECKPOINT)
    editor.set_text(page, positive, "text", "a red cube on a table")
    editor.set_text(page, negative, "text", "blurry")
    editor.set_number(page, latent, "width", 64)
    editor.set_number(page, latent, "height", 64)
    editor.set_number(page, sampler, "steps", 2)
    editor.set_combo(page, sampler, "control_after_generate", "fixed")
    editor.set_number(page, save, "filename_prefix", "built_by_mouse")

    editor.capture_events(page)
    page.locator("#graph-canvas").focus()
    page.keyboard.press("Control+Enter")
    editor.wait_for_event(page, "execution_success")
    (queued,) = editor.events(page, "prompt-queued")
    prompt = queued[1]["prompt"]
    assert prompt[str(sampler)]["inputs"] == {
        "seed": prompt[str(sampler)]["inputs"]["seed"], "steps": 2, "cfg": 8, "sampler_name": "euler", "scheduler": "simple", "denoise": 1,
        "model": [str(ckpt), 0], "positive": [str(positive), 0], "negative": [str(negative), 0], "latent_image": [str(latent), 0],
    }
    assert prompt[str(positive)]["inputs"]["text"] == "a red cube on a table"
    assert prompt[str(ckpt)]["inputs"]["ckpt_name"] == CHECKPOINT

    # per-node progress and the overall bar while the sampler ran
    steps = [view for kind, detail, view in editor.events(page) if kind == "progress" and detail["node"] == str(sampler)]
    assert [view["progress"].get(str(sampler)) for view in steps] == [0.5, 1.0]
    assert all(view["running"] == [sampler] and 0 < int(view["bar"].rstrip("%")) < 100 for view in steps)
    assert all("KSampler" in view["label"] for view in steps)
    running = [view["running"] for kind, _, view in editor.events(page) if kind == "executing"]
    assert [sampler] in running and [save] in running and running[-1] == []
    # the image on the Save Image node and in the history panel, and the file in the output folder
    (url,) = assert_image_shown(page, save, "output", (64, 64))
    assert "built_by_mouse_00001_.png" in url
    assert Image.open(server.output / "built_by_mouse_00001_.png").size == (64, 64)
    editor.menu(page, "View", "History")
    thumbnail = page.locator("#sdflow-history-panel .sdflow-history-entry.sdflow-success .sdflow-thumbnail img[alt='built_by_mouse_00001_.png']")
    thumbnail.wait_for()
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle())
    assert page.locator("#run-progress-bar").evaluate("(bar) => bar.style.width") == "0%"


def test_the_default_workflow_is_txt2img_and_runs_with_previews_on_the_sampler(page, server) -> None:
    default = json.loads((REPO / "workflows" / "txt2img.json").read_text())
    shown = page.evaluate("window.app.serializeWorkflow()")
    assert sorted((n["id"], n["type"], n["widgets_values"]) for n in shown["nodes"]) == sorted(
        (n["id"], n["type"], n["widgets_values"]) for n in default["nodes"])
    assert page.evaluate("window.app.workflowName") == "txt2img"
    (sampler,) = editor.nodes_of_type(page, "KSampler")
    (latent,) = editor.nodes_of_type(page, "EmptyLatentImage")
    (save,) = editor.nodes_of_type(page, "SaveImage")
    editor.set_number(page, latent, "width", 64)
    editor.set_number(page, latent, "height", 96)
    editor.set_number(page, sampler, "steps", 3)
    editor.set_number(page, save, "filename_prefix", "default_run")

    editor.capture_events(page)
    page.click("#queue-button")
    editor.wait_for_event(page, "execution_success")
    previews = [view for kind, detail, view in editor.events(page) if kind == "preview"]
    assert len(previews) == 3 and all(view["images"].get(str(sampler)) == "preview" for view in previews)
    progress = [view["progress"].get(str(sampler)) for kind, _, view in editor.events(page) if kind == "progress"]
    assert progress == [1 / 3, 2 / 3, 1.0]
    # the last step's preview stays on the sampler; the output is on the Save Image node
    (preview,) = assert_image_shown(page, sampler, "preview")
    assert preview.startswith("blob:")
    (url,) = assert_image_shown(page, save, "output", (64, 96))
    assert "default_run_00001_.png" in url and (server.output / "default_run_00001_.png").is_file()


def test_invalid_inputs_are_shown_on_their_nodes_naming_input_and_reason(page, server, tmp_path) -> None:
    workflow = editor.small_txt2img()
    nodes = {node["type"]: node for node in workflow["nodes"]}
    nodes["CheckpointLoaderSimple"]["widgets_values"] = ["missing-model.safetensors"]
    nodes["KSampler"]["widgets_values"][2] = 0  # steps below the minimum of 1
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(workflow))
    editor.load_file(page, path)
    # the missing checkpoint is named on loading, with its folder
    warning = page.locator("#toasts .toast-warning", has_text="missing-model.safetensors")
    warning.wait_for()
    assert "models/checkpoints" in warning.inner_text()

    ckpt, sampler = nodes["CheckpointLoaderSimple"]["id"], nodes["KSampler"]["id"]
    page.click("#queue-button")
    page.wait_for_function("(id) => window.app.graph.getNodeById(id).errorMessages?.length", arg=sampler)
    ckpt_node, sampler_node = editor.node_info(page, ckpt), editor.node_info(page, sampler)
    (ckpt_error,) = ckpt_node["errors"]
    assert ckpt_node["has_errors"] and "Value not in list" in ckpt_error
    assert "ckpt_name" in ckpt_error and "missing-model.safetensors" in ckpt_error
    (steps_error,) = sampler_node["errors"]
    assert sampler_node["has_errors"] and "smaller than min of 1" in steps_error and "steps" in steps_error
    assert [n for n in editor.node_ids(page) if editor.node_info(page, n)["errors"]] == sorted([ckpt, sampler], key=editor.node_ids(page).index)
    error_toast = page.locator("#toasts .toast-error").last.inner_text()
    assert "Prompt outputs failed validation" in error_toast and "missing-model.safetensors" in error_toast
    assert page.evaluate("(async () => (await window.app.api.get('/queue')).queue_pending.length)()") == 0

    # fixed through the widgets, the prompt is accepted and the errors go away
    editor.set_combo(page, ckpt, "ckpt_name", CHECKPOINT)
    editor.set_number(page, sampler, "steps", 2)
    editor.capture_events(page)
    page.click("#queue-button")
    editor.wait_for_event(page, "execution_success")
    assert editor.node_info(page, ckpt)["errors"] == [] and not editor.node_info(page, sampler)["has_errors"]


def test_a_node_failing_while_running_shows_the_error(page, server) -> None:
    (sampler,) = editor.nodes_of_type(page, "KSampler")
    (latent,) = editor.nodes_of_type(page, "EmptyLatentImage")
    editor.set_number(page, latent, "width", 64)
    editor.set_number(page, latent, "height", 64)
    editor.set_number(page, sampler, "steps", 1)
    # an SDXL model sampled with SD 1.5 text conditioning passes validation and fails in the sampler
    sdxl = editor.add_node_by_search(page, "load checkpoint", "CheckpointLoaderSimple")
    editor.set_combo(page, sdxl, "ckpt_name", "sdflow-tiny-sdxl.safetensors")
    editor.connect(page, sdxl, "MODEL", sampler, "model")
    editor.capture_events(page)
    page.click("#queue-button")
    ((_, error, view),) = editor.wait_for_event(page, "execution_error")
    assert error["node_id"] == str(sampler)
    info = editor.node_info(page, sampler)
    assert info["has_errors"] and info["errors"] == [error["exception_message"]]
    assert "KSampler" in info["errors"][0] and "RuntimeError" in info["errors"][0]
    assert view["running"] == [] and not info["running"]
    assert "KSampler failed" in page.locator("#toasts .toast-error").last.inner_text()
    # a new run clears the error: the model from the SD 1.5 checkpoint again
    (ckpt,) = [n for n in editor.nodes_of_type(page, "CheckpointLoaderSimple") if n != sdxl]
    editor.connect(page, ckpt, "MODEL", sampler, "model")
    page.click("#queue-button")
    editor.wait_for_event(page, "execution_success")
    assert editor.node_info(page, sampler)["errors"] == []
