"""Read-only routes over real HTTP: node catalogue, models, system, features, plugins, editor files."""

from __future__ import annotations

import pytest

from engine.runtime import Runtime, Settings

INFO_KEYS = {"input", "input_order", "output", "output_is_list", "output_name", "name", "display_name", "description", "category", "output_node"}


@pytest.mark.parametrize("prefix", ["", "/api"])
def test_object_info(server, prefix) -> None:
    reply = server.get(f"{prefix}/object_info")
    assert reply.status == 200
    info = reply.json()
    assert info["SaveImage"]["output_node"] is True and set(info["SaveImage"]) >= INFO_KEYS
    assert info["Sleep"]["category"] == "test"
    one = server.get(f"{prefix}/object_info/ImageScale").json()
    assert list(one) == ["ImageScale"]
    assert one["ImageScale"]["input_order"]["required"] == ["image", "upscale_method", "width", "height", "crop"]
    assert server.get(f"{prefix}/object_info/NoSuchNode").json() == {}


def test_models_and_embeddings(live, tmp_path, models_dir) -> None:
    server = live(Runtime(Settings(base_dir=tmp_path, models_dir=models_dir, load_plugins=False)))
    folders = server.get("/api/models").json()
    assert folders[:4] == ["checkpoints", "configs", "loras", "vae"] and "embeddings" in folders
    assert "sdflow-tiny-sd15.safetensors" in server.get("/api/models/checkpoints").json()
    assert server.get("/models/vae").json() == ["sdflow-tiny-vae.safetensors"]
    assert server.get("/models/loras").json() == ["sdflow-tiny-locon-sd15.safetensors", "sdflow-tiny-lora-sd15.safetensors"]
    assert server.get("/models/hypernetworks").json() == []
    missing = server.get("/api/models/nope")
    assert missing.status == 404 and "checkpoints" in missing.json()["error"]["message"]
    assert server.get("/embeddings").json() == ["sdflow-tiny-embedding"]


def test_system_stats_and_features(server) -> None:
    stats = server.get("/api/system_stats").json()
    assert set(stats["system"]) >= {"os", "ram_total", "ram_free", "comfyui_version", "python_version", "pytorch_version", "embedded_python", "argv"}
    assert stats["system"]["ram_total"] > 0
    (device,) = stats["devices"]
    assert set(device) >= {"name", "type", "index", "vram_total", "vram_free", "torch_vram_total", "torch_vram_free"}
    assert server.get("/features").json() == {"supports_preview_metadata": True, "max_upload_size": 100 * 1024 * 1024}


def test_prompt_queue_info(server) -> None:
    assert server.get("/prompt").json() == {"exec_info": {"queue_remaining": 0}}


def test_plugins_report_load_errors_and_packs(live, tmp_path) -> None:
    plugins = tmp_path / "custom_nodes"
    plugins.mkdir()
    (plugins / "broken.py").write_text("raise ImportError('needs a library that is not installed')\n")
    pack = plugins / "withweb"
    (pack / "js" / "sub").mkdir(parents=True)
    (pack / "__init__.py").write_text(
        "from engine import Input, Node, NodeContext, node\n"
        "@node(category='test')\nclass WebThing(Node):\n    value: int = Input(1)\n"
        "    def execute(self, ctx: NodeContext) -> None:\n        return None\n"
        "NODES = [WebThing]\nWEB_DIRECTORY = './js'\n"
    )
    (pack / "js" / "main.js").write_text("console.log('hello');\n")
    (pack / "js" / "sub" / "more.js").write_text("// more\n")
    (pack / "js" / "style.css").write_text("body {}\n")
    server = live(Runtime(Settings(base_dir=tmp_path)))
    report = server.get("/api/sdflow/plugins").json()
    assert any("broken" in e["source"] and "needs a library" in e["message"] for e in report["errors"])
    assert report["packs"]["custom_nodes.withweb"] == ["WebThing"]
    assert server.get("/extensions").json() == ["/extensions/withweb/main.js", "/extensions/withweb/sub/more.js"]
    script = server.get("/extensions/withweb/main.js")
    assert script.status == 200 and script.body == b"console.log('hello');\n"
    assert server.get("/extensions/withweb/nope.js").status == 404
    assert server.get("/extensions/nopack/main.js").status == 404


def test_editor_page_is_served_at_the_root(server) -> None:
    page = server.get("/")
    assert page.status == 200 and page.headers.get_content_type() == "text/html"
    assert b"sdflow" in page.body
    assert server.get("/index.html").body == page.body
    assert server.get("/no-such-file.js").status == 404


def test_example_workflows_are_offered(server) -> None:
    names = server.get("/api/sdflow/workflows").json()
    assert "txt2img.json" in names and "api/txt2img.json" in names
    prompt = server.get("/sdflow/workflows/api/txt2img.json").json()
    assert prompt["5"]["class_type"] == "KSampler"
    assert server.get("/sdflow/workflows/%2e%2e/pyproject.toml").status == 400
    assert server.get("/sdflow/workflows/none.json").status == 404
