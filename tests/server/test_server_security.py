"""The request guards over real sockets: loopback Host names, cross-site Origins and Sec-Fetch-Site
on state-changing requests and WebSocket handshakes, the bearer token, body size limits, and
`sdflow serve` refusing to listen beyond loopback without a token."""

from __future__ import annotations

import hashlib
import io
import json
import time

import aiohttp
import pytest
from PIL import Image

import server as server_module
from engine.cli import main as cli_main
from http_api.security import is_loopback
from http_api.state import STATE, ServerOptions
from tests.conftest import REPO
from tests.server.conftest import TEST_NODES
from tests.server.helpers import gate_prompt, sleep_prompt, wait_for

TOKEN = "s3cret"
BOUNDARY = "sdflow-security-boundary"
WS_UPGRADE = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


def png_bytes(size: int = 4, noise: bool = False) -> bytes:
    if noise:
        image = Image.frombytes("RGB", (size, size), hashlib.shake_256(b"noise").digest(size * size * 3))
    else:
        image = Image.new("RGB", (size, size), (1, 2, 3))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def multipart(data: bytes, filename: str = "up.png") -> tuple[bytes, dict[str, str]]:
    body = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="{filename}"\r\nContent-Type: image/png\r\n\r\n'.encode()
        + data + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    return body, {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def send(server, route: str, headers: dict[str, str], method: str = "POST"):
    """A state-changing request to `route` with a body that route accepts."""
    if route == "/upload/image":
        body, extra = multipart(png_bytes())
        return server.call(method, route, raw=body, headers={**extra, **headers})
    bodies = {"/prompt": {"prompt": sleep_prompt("sent")}, "/api/prompt": {"prompt": sleep_prompt("sent")}, "/queue": {"clear": True},
              "/history": {"clear": True}, "/interrupt": {}, "/free": {"free_memory": True}}
    return server.call(method, route, bodies[route], headers=headers)


def fill(headers: dict[str, str], port: int) -> dict[str, str]:
    return {key: value.format(port=port, other=port + 1 if port < 65535 else port - 1) for key, value in headers.items()}


def assert_error(reply, status: int, error_type: str | None = None) -> dict:
    assert reply.status == status, (reply.status, reply.body[:300])
    error = reply.json()["error"]
    assert error["message"]
    if error_type is not None:
        assert error["type"] == error_type
    return error


def queue_is_empty(server, token: str | None = None) -> bool:
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    empty = {"queue_running": [], "queue_pending": []}
    return server.get("/queue", headers=auth).json() == empty and server.get("/history", headers=auth).json() == {}


async def handshake(url: str, **kwargs) -> int | str:
    """A WebSocket handshake: the first event's type when accepted, the HTTP status when refused."""
    async with aiohttp.ClientSession() as session:
        try:
            async with session.ws_connect(url, **kwargs) as ws:
                message = await ws.receive(timeout=10)
                return json.loads(message.data)["type"]
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status


# ---- Host names (no token) --------------------------------------------------------------------------------


BAD_HOSTS = ["evil.example", "evil.example:{port}", "127.0.0.1.evil.example:{port}", "localhost.evil.example:{port}", "192.168.1.10:{port}",
             "0.0.0.0:{port}", "[::]:{port}", "10.0.0.1"]
GOOD_HOSTS = ["localhost:{port}", "127.0.0.1:{port}", "[::1]:{port}", "localhost", "LocalHost:{port}", "127.0.0.2:{port}", "app.localhost:{port}"]


@pytest.mark.parametrize("host", BAD_HOSTS)
def test_a_foreign_host_name_is_refused_for_reads_and_writes(server, host) -> None:
    headers = {"Host": host.format(port=server.port)}
    for path in ("/prompt", "/object_info", "/", "/view?filename=x.png", "/ws"):
        assert_error(server.get(path, headers=headers), 403, "forbidden_host")
    assert_error(server.post("/prompt", {"prompt": sleep_prompt("x")}, headers=headers), 403, "forbidden_host")
    assert_error(server.get("/ws", headers={**headers, **WS_UPGRADE}), 403, "forbidden_host")
    assert queue_is_empty(server)


@pytest.mark.parametrize("host", GOOD_HOSTS)
def test_loopback_host_names_are_served(server, host) -> None:
    headers = {"Host": host.format(port=server.port)}
    assert server.get("/prompt", headers=headers).json() == {"exec_info": {"queue_remaining": 0}}
    assert server.post("/prompt", {"prompt": sleep_prompt("ok")}, headers=headers).status == 200


def test_a_websocket_with_a_foreign_host_is_refused(server) -> None:
    assert server.run(lambda: handshake(f"{server.url}/ws", headers={"Host": "evil.example"})) == 403
    assert server.run(lambda: handshake(f"{server.url}/ws", headers={"Host": f"localhost:{server.port}"})) == "status"


# ---- Origin and Sec-Fetch-Site (no token) ---------------------------------------------------------------------


CROSS_SITE = [
    {"Origin": "http://evil.example"},
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Origin": "NULL"},
    {"Origin": "http://127.0.0.1:{other}"},
    {"Origin": "http://127.0.0.1"},
    {"Origin": "http://localhost:{port}"},
    {"Origin": "http://evil.example:{port}"},
    {"Origin": "http://127.0.0.1.evil.example:{port}"},
    {"Origin": "file://"},
    {"Origin": "chrome-extension://abcdef"},
    {"Origin": "not a url"},
    {"Origin": ""},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "Cross-Site"},
    {"Sec-Fetch-Site": "cross-site", "Origin": "http://127.0.0.1:{port}"},
]
SAME_SITE = [
    {},
    {"Origin": "http://127.0.0.1:{port}"},
    {"Origin": "HTTP://127.0.0.1:{port}"},
    {"Origin": "http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"},
    {"Sec-Fetch-Site": "none"},
    {"Host": "localhost:{port}", "Origin": "http://localhost:{port}"},
    {"Host": "[::1]:{port}", "Origin": "http://[::1]:{port}"},
]
STATE_ROUTES = ["/prompt", "/api/prompt", "/interrupt", "/queue", "/history", "/free", "/upload/image"]


@pytest.mark.parametrize("route", STATE_ROUTES)
@pytest.mark.parametrize("headers", CROSS_SITE, ids=lambda h: json.dumps(h))
def test_cross_site_writes_are_refused(server, server_runtime, route, headers) -> None:
    reply = send(server, route, fill(headers, server.port))
    assert_error(reply, 403, "cross_site_request")
    assert queue_is_empty(server)
    assert list(server_runtime.folders.root("input").iterdir()) == []


@pytest.mark.parametrize("route", STATE_ROUTES)
@pytest.mark.parametrize("headers", SAME_SITE, ids=lambda h: json.dumps(h))
def test_same_site_writes_are_accepted(server, server_runtime, route, headers) -> None:
    reply = send(server, route, fill(headers, server.port))
    assert reply.status == 200, reply.body
    if route.endswith("/prompt"):
        assert reply.json()["prompt_id"]
    if route == "/upload/image":
        assert (server_runtime.folders.root("input") / "up.png").exists()


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_are_guarded_too(server, method) -> None:
    assert_error(send(server, "/prompt", {"Origin": "http://evil.example"}, method), 403, "cross_site_request")
    assert server.call(method, "/prompt", {}, headers={"Origin": server.url}).status == 405


def test_refused_requests_change_nothing(server) -> None:
    """With a prompt running and one pending, cross-site clear/delete/interrupt requests are no-ops."""
    done = server.post("/prompt", {"prompt": sleep_prompt("done"), "prompt_id": "done"}).json()["prompt_id"]
    wait_for(lambda: server.get(f"/history/{done}").json())
    server.post("/prompt", {"prompt": gate_prompt("g"), "prompt_id": "running"})
    wait_for(lambda: server.get("/queue").json()["queue_running"])
    server.post("/prompt", {"prompt": sleep_prompt("later"), "prompt_id": "later"})
    evil = {"Origin": "http://evil.example"}
    for path, body in (("/queue", {"clear": True}), ("/queue", {"delete": ["later"]}), ("/interrupt", {}), ("/interrupt", {"prompt_id": "running"}),
                       ("/history", {"clear": True}), ("/history", {"delete": [done]})):
        assert_error(server.post(path, body, headers=evil), 403)
    time.sleep(0.2)
    queue = server.get("/queue").json()
    assert [row[1] for row in queue["queue_running"]] == ["running"] and [row[1] for row in queue["queue_pending"]] == ["later"]
    assert list(server.get("/history").json()) == [done]
    TEST_NODES.gate("g").set()
    wait_for(lambda: len(server.get("/history").json()) == 3)
    assert server.get("/history/running").json()["running"]["status"]["status_str"] == "success"


@pytest.mark.parametrize("headers", [{"Origin": "http://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}], ids=str)
def test_cross_site_reads_are_answered(server, headers) -> None:
    """Reads are guarded by the Host check only (a page elsewhere cannot read the answers anyway)."""
    assert server.get("/prompt", headers=headers).json() == {"exec_info": {"queue_remaining": 0}}
    assert server.get("/object_info/LoadImage", headers=headers).status == 200
    assert server.call("HEAD", "/", headers=headers).status == 200


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://localhost:{port}", "http://127.0.0.1:{other}"])
def test_cross_site_websockets_are_refused(server, origin) -> None:
    origin = fill({"o": origin}, server.port)["o"]
    assert server.run(lambda: handshake(f"{server.url}/ws?clientId=x", origin=origin)) == 403
    assert_error(server.get("/ws", headers={**WS_UPGRADE, "Origin": origin}), 403, "cross_site_request")
    assert server.run(lambda: handshake(f"{server.url}/ws", headers={"Sec-Fetch-Site": "cross-site"})) == 403


def test_same_origin_websockets_work(server) -> None:
    assert server.run(lambda: handshake(f"{server.url}/ws?clientId=me", origin=server.url)) == "status"
    assert server.run(lambda: handshake(f"{server.url}/ws")) == "status"
    assert server.run(lambda: handshake(f"http://localhost:{server.port}/ws", origin=f"http://localhost:{server.port}")) == "status"


# ---- the token ---------------------------------------------------------------------------------------------------


@pytest.fixture
def guarded(live, server_runtime):
    (server_runtime.folders.root("output") / "pic.png").write_bytes(png_bytes())
    return live(server_runtime, ServerOptions(auth_token=TOKEN))


ROUTES = [("GET", "/object_info"), ("GET", "/api/object_info"), ("GET", "/view?filename=pic.png"),
          ("GET", "/prompt"), ("POST", "/prompt"), ("POST", "/api/prompt"), ("GET", "/queue"), ("POST", "/queue"), ("GET", "/history"),
          ("POST", "/interrupt"), ("POST", "/upload/image"), ("POST", "/upload/mask"), ("GET", "/extensions"), ("GET", "/features"),
          ("GET", "/ws"), ("GET", "/extensions/pack/script.js"), ("HEAD", "/"), ("DELETE", "/prompt"), ("OPTIONS", "/prompt"), ("HEAD", "/prompt")]
WRONG = [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {TOKEN[:-1]}"}, {"Authorization": f"Bearer {TOKEN}x"},
         {"Authorization": f"Basic {TOKEN}"}, {"Authorization": TOKEN}, {"Authorization": "Bearer"}, {"Authorization": f"Bearer{TOKEN}"},
         {"Authorization": "Bearer \xff\xfe"}, {"Cookie": f"token={TOKEN}"}, {"X-Auth-Token": TOKEN}]


def assert_unauthorized(reply) -> None:
    assert reply.status == 401, (reply.status, reply.body[:200])
    assert reply.headers["WWW-Authenticate"] == "Bearer"
    if reply.body:  # HEAD has none
        assert reply.json()["error"]["type"] == "unauthorized"
    assert TOKEN.encode() not in reply.body


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=lambda v: v)
def test_every_route_needs_the_token(guarded, method, path) -> None:
    joiner = "&" if "?" in path else "?"
    for headers in WRONG:
        assert_unauthorized(guarded.call(method, path, headers=headers))
    for query in ("token=wrong", "token=", f"Token={TOKEN}", f"token={TOKEN}%00"):
        assert_unauthorized(guarded.call(method, f"{path}{joiner}{query}"))
    assert_unauthorized(guarded.call(method, path, headers={**WS_UPGRADE, "Authorization": "Bearer wrong"}))
    assert queue_is_empty(guarded, TOKEN)


def test_the_editor_s_own_files_load_without_the_token(guarded) -> None:
    """The page's module imports and stylesheet carry no token; its API calls do (from ?token=)."""
    page = guarded.get("/")
    assert page.status == 200 and page.headers.get_content_type() == "text/html"
    assert guarded.get("/src/main.js").status == 200
    assert guarded.get("/no/such/file.js").status == 404
    library = guarded.get("/lib/litegraph/litegraph.es.js")
    assert library.status == (200 if (REPO / "web" / "node_modules" / "@comfyorg" / "litegraph").is_dir() else 404)
    assert_unauthorized(guarded.get("/object_info"))


def test_the_bearer_header_opens_every_route(guarded, server_runtime) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert guarded.get("/", headers=auth).status == 200
    assert "LoadImage" in guarded.get("/object_info", headers=auth).json()
    assert guarded.get("/view?filename=pic.png", headers=auth).body == png_bytes()
    assert guarded.call("GET", "/prompt", headers={"Authorization": f"bearer  {TOKEN} "}).status == 200
    reply = guarded.post("/prompt", {"prompt": sleep_prompt("authorized")}, headers=auth)
    assert reply.status == 200
    prompt_id = reply.json()["prompt_id"]
    wait_for(lambda: guarded.get(f"/history/{prompt_id}", headers=auth).json())
    body, headers = multipart(png_bytes())
    assert guarded.call("POST", "/upload/image", raw=body, headers={**headers, **auth}).json()["name"] == "up.png"
    assert guarded.run(lambda: handshake(f"{guarded.url}/ws", headers=auth)) == "status"


def test_the_token_in_the_query_works_for_reads_and_websockets_only(guarded, server_runtime) -> None:
    assert guarded.get(f"/?token={TOKEN}").status == 200
    assert guarded.get(f"/prompt?token={TOKEN}").json() == {"exec_info": {"queue_remaining": 0}}
    assert guarded.get(f"/view?filename=pic.png&token={TOKEN}").body == png_bytes()  # what an <img> tag can do
    assert guarded.run(lambda: handshake(f"{guarded.url}/ws?clientId=c&token={TOKEN}")) == "status"
    assert guarded.run(lambda: handshake(f"{guarded.url}/ws?clientId=c&token=wrong")) == 401
    assert guarded.run(lambda: handshake(f"{guarded.url}/ws?clientId=c")) == 401
    assert_unauthorized(guarded.post(f"/prompt?token={TOKEN}", {"prompt": sleep_prompt("no")}))
    body, headers = multipart(png_bytes())
    assert_unauthorized(guarded.call("POST", f"/upload/image?token={TOKEN}", raw=body, headers=headers))
    assert_unauthorized(guarded.post(f"/queue?token={TOKEN}", {"clear": True}))
    assert queue_is_empty(guarded, TOKEN) and list(server_runtime.folders.root("input").iterdir()) == []


def test_with_a_token_foreign_hosts_and_origins_are_allowed(guarded) -> None:
    """Behind a reverse proxy or on a LAN, the token is the guard; Host and Origin are not checked."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    foreign = {"Host": "sdflow.example.org", "Origin": "https://sdflow.example.org", "Sec-Fetch-Site": "cross-site"}
    assert guarded.post("/prompt", {"prompt": sleep_prompt("proxied")}, headers={**auth, **foreign}).status == 200
    assert guarded.get("/prompt", headers={**auth, **foreign}).status == 200
    assert guarded.run(lambda: handshake(f"{guarded.url}/ws?token={TOKEN}", origin="https://elsewhere.example")) == "status"
    assert_unauthorized(guarded.post("/prompt", {"prompt": sleep_prompt("no")}, headers=foreign))
    assert_unauthorized(guarded.get("/prompt", headers={"Host": "evil.example"}))


# ---- body size ---------------------------------------------------------------------------------------------------


def test_bodies_over_the_limit_are_refused_and_the_server_goes_on(live, server_runtime) -> None:
    limit = 4096
    server = live(server_runtime, ServerOptions(max_upload_bytes=limit))
    assert server.get("/features").json()["max_upload_size"] == limit
    big = png_bytes(64, noise=True)
    assert len(big) > 2 * limit
    body, headers = multipart(big, "big.png")
    assert_error(server.call("POST", "/upload/image", raw=body, headers=headers), 413)
    assert_error(server.call("POST", "/upload/mask", raw=body, headers=headers), 413)
    assert_error(server.post("/prompt", {"prompt": sleep_prompt("x" * 2 * limit)}), 413)
    assert_error(server.post("/api/queue", {"delete": ["x" * 100] * 100}), 413)
    assert list(server_runtime.folders.root("input").iterdir()) == [] and queue_is_empty(server)
    body, headers = multipart(png_bytes(), "small.png")
    assert server.call("POST", "/upload/image", raw=body, headers=headers).json()["name"] == "small.png"
    assert server.post("/prompt", {"prompt": sleep_prompt("small")}).status == 200
    assert server.get("/prompt").status == 200


# ---- sdflow serve --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("listen", [["--listen", "0.0.0.0"], ["--listen"], ["--listen", "127.0.0.1,192.168.1.5"], ["--listen", "::"],
                                    ["--listen", "sdflow.example.org"]], ids=" ".join)
def test_serve_refuses_to_listen_beyond_loopback_without_a_token(tmp_path, capsys, monkeypatch, listen) -> None:
    async def must_not_serve(*args) -> None:
        raise AssertionError("sdflow serve started listening")

    monkeypatch.setattr(server_module, "serve", must_not_serve)  # a regression fails here instead of serving forever
    monkeypatch.delenv(server_module.TOKEN_ENV, raising=False)
    started = time.monotonic()
    status = cli_main(["serve", "--base-dir", str(tmp_path), "--no-plugins", "--no-demo-models", "--port", "0", *listen])
    assert status == 2 and time.monotonic() - started < 10
    message = capsys.readouterr().err
    assert "without an access token" in message and "--auth-token" in message and server_module.TOKEN_ENV in message
    assert not (tmp_path / "user").exists()  # nothing was set up


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_serve_with_a_token_may_listen_everywhere(tmp_path, monkeypatch, how) -> None:
    started = {}

    async def fake_serve(app, hosts, port, announce) -> None:
        started.update(hosts=hosts, port=port, announce=announce.format(port=port), token=app[STATE].options.auth_token)
        app[STATE].queue.close()

    monkeypatch.setattr(server_module, "serve", fake_serve)
    monkeypatch.delenv(server_module.TOKEN_ENV, raising=False)
    extra = ["--auth-token", "t0k"] if how == "flag" else []
    if how == "environment":
        monkeypatch.setenv(server_module.TOKEN_ENV, "t0k")
    status = cli_main(["serve", "--base-dir", str(tmp_path), "--no-plugins", "--no-demo-models", "--listen", "--port", "9999", *extra])
    assert status == 0
    assert started == {"hosts": ["0.0.0.0", "::"], "port": 9999, "announce": "sdflow is serving at http://127.0.0.1:9999/?token=t0k", "token": "t0k"}


def test_serve_on_loopback_needs_no_token(tmp_path, monkeypatch) -> None:
    started = {}

    async def fake_serve(app, hosts, port, announce) -> None:
        started.update(hosts=hosts, token=app[STATE].options.auth_token)
        app[STATE].queue.close()

    monkeypatch.setattr(server_module, "serve", fake_serve)
    monkeypatch.delenv(server_module.TOKEN_ENV, raising=False)
    assert cli_main(["serve", "--base-dir", str(tmp_path), "--no-plugins", "--no-demo-models", "--listen", "127.0.0.1,::1,localhost"]) == 0
    assert started == {"hosts": ["127.0.0.1", "::1", "localhost"], "token": None}


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True), ("localhost", True), ("LOCALHOST", True), ("a.localhost", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.5", False), ("10.0.0.1", False), ("localhost.example.org", False), ("example.org", False),
    ("", False), ("127.0.0.1.nip.io", False),
])
def test_is_loopback(host, loopback) -> None:
    assert is_loopback(host) is loopback
