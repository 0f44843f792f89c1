"""The example plugin's editor script over real HTTP: listed at `/extensions` and served as JavaScript."""

from __future__ import annotations

from engine.runtime import Runtime, Settings
from tests.conftest import REPO

SCRIPT = REPO / "custom_nodes" / "example_pack" / "web" / "last_output.js"


def test_example_pack_script_is_listed_and_served(live, tmp_path) -> None:
    server = live(Runtime(Settings(base_dir=tmp_path, plugin_dirs=[REPO / "custom_nodes"], preview_method="none")))
    assert "/extensions/example_pack/last_output.js" in server.get("/api/extensions").json()
    script = server.get("/extensions/example_pack/last_output.js")
    assert script.status == 200
    assert script.headers.get_content_type() in ("application/javascript", "text/javascript")
    assert script.body == SCRIPT.read_bytes()
