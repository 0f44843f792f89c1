"""The txt2img workflow through the server with the demo model: events, step previews as binary
frames, history, and the image fetched through /view."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import pytest
from PIL import Image

from engine.runtime import Runtime, Settings
from tests.server.wsclient import WsClient, types_of

WORKFLOW = Path(__file__).resolve().parents[2] / "workflows" / "api" / "txt2img.json"


def small_txt2img(steps: int = 3, size: int = 64) -> dict:
    """workflows/api/txt2img.json at a test's size: KSampler is node 5, SaveImage node 7."""
    prompt = json.loads(WORKFLOW.read_text())
    prompt["4"]["inputs"].update(width=size, height=size)
    prompt["5"]["inputs"]["steps"] = steps
    return prompt


@pytest.mark.parametrize("metadata", [False, True], ids=["plain-previews", "previews-with-metadata"])
def test_txt2img_over_http_and_websocket(live, tmp_path, models_dir, metadata) -> None:
    runtime = Runtime(Settings(base_dir=tmp_path, models_dir=models_dir, load_plugins=False, preview_method="latent2rgb"))
    server = live(runtime)

    async def scenario():
        client = await WsClient.connect(server.url, "painter")
        assert (await client.receive()).data["sid"] == "painter"
        if metadata:
            await client.send("feature_flags", {"supports_preview_metadata": True})
            assert (await client.receive()).type == "feature_flags"
        status, answer = await client.post(f"{server.url}/api/prompt", {"prompt": small_txt2img(), "client_id": "painter"})
        assert status == 200, answer
        frames = await client.until_done(answer["prompt_id"])
        await client.close()
        return answer["prompt_id"], frames

    prompt_id, frames = server.run(scenario)
    order = types_of(frames)
    assert order[:2] == ["execution_start", "execution_cached"] and order[-3:] == ["executed", "execution_success", "executing"]
    assert [f.data["node"] for f in frames if f.type == "executing"] == ["1", "2", "3", "4", "5", "6", "7", None]
    assert [f.data["value"] for f in frames if f.type == "progress"] == [1, 2, 3]
    previews = [f.binary for f in frames if f.type == "binary"]
    assert len(previews) == 3
    for frame in previews:
        kind = struct.unpack(">I", frame[:4])[0]
        if metadata:
            assert kind == 4
            length = struct.unpack(">I", frame[4:8])[0]
            header = json.loads(frame[8 : 8 + length])
            assert header == {"node_id": "5", "prompt_id": prompt_id, "display_node_id": "5", "parent_node_id": None, "real_node_id": "5",
                              "image_type": "image/jpeg"}
            jpeg = frame[8 + length :]
        else:
            assert kind == 1 and struct.unpack(">I", frame[4:8])[0] == 1  # JPEG
            jpeg = frame[8:]
        assert Image.open(io.BytesIO(jpeg)).format == "JPEG"
    # previews come between the sampler's executing and the decoder's
    first_preview = next(i for i, f in enumerate(frames) if f.type == "binary")
    assert frames.index(next(f for f in frames if f.type == "executing" and f.data["node"] == "5")) < first_preview

    entry = server.get(f"/history/{prompt_id}").json()[prompt_id]
    (image,) = entry["outputs"]["7"]["images"]
    assert image["type"] == "output" and image["subfolder"] == ""
    view = server.get(f"/view?filename={image['filename']}&type=output&subfolder=")
    assert view.status == 200 and view.headers.get_content_type() == "image/png"
    assert view.body == (runtime.folders.root("output") / image["filename"]).read_bytes()
    assert Image.open(io.BytesIO(view.body)).size == (64, 64)
    webp = server.get(f"/api/view?filename={image['filename']}&preview=webp;50")
    assert webp.headers.get_content_type() == "image/webp" and Image.open(io.BytesIO(webp.body)).format == "WEBP"


def test_saved_image_carries_the_prompt_and_workflow(live, tmp_path, models_dir) -> None:
    server = live(Runtime(Settings(base_dir=tmp_path, models_dir=models_dir, load_plugins=False, preview_method="none")))
    workflow = {"nodes": [], "links": [], "version": 0.4}
    answer = server.post("/prompt", {"prompt": small_txt2img(steps=1), "extra_data": {"extra_pnginfo": {"workflow": workflow}}}).json()
    from tests.server.helpers import wait_for

    entry = wait_for(lambda: server.get(f"/history/{answer['prompt_id']}").json())[answer["prompt_id"]]
    name = entry["outputs"]["7"]["images"][0]["filename"]
    saved = Image.open(io.BytesIO(server.get(f"/view?filename={name}").body))
    assert json.loads(saved.info["prompt"]) == small_txt2img(steps=1)
    assert json.loads(saved.info["workflow"]) == workflow
