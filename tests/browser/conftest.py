"""A real `sdflow serve` with the demo models and a headless Debian Chromium driven by Playwright.

The browser is the system's `/usr/bin/chromium` (`.ci/run` installs Debian's package when it is
missing; Playwright's own browser downloads are never used). Every test's page is saved as a
screenshot under `test-artifacts/browser/` when the test ends, and JavaScript errors on the page
fail the test. `plugin_server`/`plugin_page` are the same on a server that loads the repository's
`custom_nodes/`. What drives the editor (mouse, keyboard, menus, files) is in `editor.py`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts" / "browser"
ANNOUNCE = re.compile(r"sdflow is serving at (http://127\.0\.0\.1:\d+/)")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]

playwright_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is part of the test extras")
if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run does it)", allow_module_level=True)
if not (REPO / "web" / "node_modules" / "@comfyorg" / "litegraph").is_dir():
    pytest.skip("the editor's npm packages are not installed (make test runs npm ci)", allow_module_level=True)


class Server:
    """`sdflow serve` in a child process on a free port, rooted in `base` (built-in nodes only unless
    `plugins` names a folder of plugin packs)."""

    def __init__(self, base: Path, plugins: Path | None = None) -> None:
        self.base = base
        self.log = open(base / "server.log", "a")  # noqa: SIM115 (open while the server runs)
        command = [sys.executable, "-m", "engine.cli", "serve", "--port", "0", "--base-dir", str(base), "--preview-method", "latent2rgb"]
        command += ["--plugins", str(plugins), "--no-demo-models"] if plugins else ["--no-plugins"]
        self.process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=self.log, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        match = ANNOUNCE.search(line)
        assert match, f"server did not start: {line!r}; log: {(base / 'server.log').read_text()[-2000:]}"
        self.url = match[1]

    @property
    def output(self) -> Path:
        return self.base / "output"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(60)
        self.log.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("editor")
    shutil.copytree(models_dir, base / "models")
    running = Server(base)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def plugin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A second server that loads the plugin packs of the repository's `custom_nodes/` (no models)."""
    running = Server(tmp_path_factory.mktemp("editor-plugins"), plugins=REPO / "custom_nodes")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Chromium for one test module: Playwright's sync API keeps an event loop running in this
    thread while it is open, which would break the asyncio-based tests of other folders."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    with playwright_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1600, "height": 1000}, accept_downloads=True,
        )
        yield context
        context.close()


#: the editor has started and opened its first workflow: `loadWorkflow` resets the undo history and
#: keeps the session in localStorage as its last steps
EDITOR_READY = "window.app?.history?.current != null && window.sdflow !== undefined && localStorage.getItem('sdflow.workflow') !== null"


def open_editor(browser, server: Server, request: pytest.FixtureRequest) -> Iterator[object]:
    tab = browser.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    # storage is cleared from a page of the same origin that does not run the editor (an editor
    # page could still be saving its restored session after the clear)
    tab.goto(f"{server.url}api/system_stats")
    tab.evaluate("localStorage.clear()")
    tab.goto(server.url)
    tab.wait_for_function(EDITOR_READY)
    # with the storage cleared, the first visit opens the default workflow
    opened = tab.evaluate("window.app.workflowName")
    assert opened == "txt2img", f"the editor opened {opened!r} instead of the default workflow"
    yield tab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', request.node.name)}.png"))
    tab.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


@pytest.fixture
def page(browser, server: Server, request: pytest.FixtureRequest) -> Iterator[object]:
    """A fresh tab on the editor, its storage cleared, its first workflow open; screenshot and JS
    errors checked at the end."""
    yield from open_editor(browser, server, request)


@pytest.fixture
def plugin_page(browser, plugin_server: Server, request: pytest.FixtureRequest) -> Iterator[object]:
    """`page` on the server that loads the example plugin pack."""
    yield from open_editor(browser, plugin_server, request)
