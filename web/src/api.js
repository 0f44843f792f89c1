/**
 * The editor's only way to the server: HTTP requests under `/api` and the `/ws` event stream.
 * A `?token=` in the page address is sent as a bearer token on requests and as `token` on the
 * WebSocket and image URLs (which cannot carry headers).
 */

const PREVIEW_IMAGE = 1;
const PREVIEW_IMAGE_WITH_METADATA = 4;
const IMAGE_TYPES = { 1: "image/jpeg", 2: "image/png" };
const RECONNECT_MS = [500, 1000, 2000, 5000];

/** A request the server answered with an error status; `body` is its parsed answer. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? (typeof body === "string" && body ? body : `HTTP ${status}`));
    this.status = status;
    this.body = body;
  }
}

/** The id this tab's WebSocket registers with; kept across reloads of the same tab. */
function tabClientId() {
  const saved = sessionStorage.getItem("sdflow.clientId");
  if (saved) return saved;
  const id = crypto.randomUUID().replaceAll("-", "");
  sessionStorage.setItem("sdflow.clientId", id);
  return id;
}

/**
 * The client: `get`, `post`, `upload` resolve to the parsed answer (JSON, else text) and reject
 * with an ApiError; server events are dispatched on `events` (see `connect`).
 */
export class Api {
  constructor(events) {
    this.events = events;
    this.token = new URLSearchParams(location.search).get("token");
    this.clientId = tabClientId();
    this.socket = null;
  }

  /** `/object_info` → `/api/object_info`; paths already under `/api/` are kept. */
  url(path) {
    return path.startsWith("/api/") ? path : `/api${path}`;
  }

  /** `url` with the access token as a query parameter, for `<img>` and WebSocket addresses. */
  withToken(url) {
    if (!this.token) return url;
    return `${url}${url.includes("?") ? "&" : "?"}token=${encodeURIComponent(this.token)}`;
  }

  async request(path, init = {}) {
    const headers = { ...(init.headers ?? {}) };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    const response = await fetch(this.url(path), { ...init, headers });
    const text = await response.text();
    let body = text;
    if ((response.headers.get("Content-Type") ?? "").includes("json") && text) body = JSON.parse(text);
    if (!response.ok) throw new ApiError(response.status, body);
    return body;
  }

  /** GET `path` (e.g. `/object_info`). */
  get(path) {
    return this.request(path);
  }

  /** POST `body` as JSON to `path`. */
  post(path, body = {}) {
    return this.request(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  }

  /** POST a multipart form (e.g. `/upload/image` with an `image` file field). */
  upload(path, formData) {
    return this.request(path, { method: "POST", body: formData });
  }

  /** The `/view` URL of an image reference `{filename, subfolder, type}`. */
  viewUrl({ filename, subfolder = "", type = "output" }) {
    const query = new URLSearchParams({ filename, subfolder, type });
    return this.withToken(`${this.url("/view")}?${query}`);
  }

  /**
   * Opens the event stream and keeps it open. Text frames become CustomEvents named after their
   * `type` with `detail` = their `data`; preview frames become `preview` events with
   * `detail = {blob, node}` (node: from the frame's metadata, else null). Also dispatches
   * `connection` with `detail = {connected}` when the socket opens or drops.
   */
  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const address = this.withToken(`${scheme}://${location.host}${this.url("/ws")}?clientId=${this.clientId}`);
    let attempt = 0;
    const open = () => {
      const socket = new WebSocket(address);
      socket.binaryType = "arraybuffer";
      socket.onopen = () => {
        attempt = 0;
        socket.send(JSON.stringify({ type: "feature_flags", data: { supports_preview_metadata: true } }));
        this.dispatch("connection", { connected: true });
      };
      socket.onmessage = (message) => this.receive(message.data);
      socket.onclose = () => {
        this.dispatch("connection", { connected: false });
        setTimeout(open, RECONNECT_MS[Math.min(attempt++, RECONNECT_MS.length - 1)]);
      };
      this.socket = socket;
    };
    open();
  }

  receive(data) {
    if (typeof data === "string") {
      const { type, data: detail } = JSON.parse(data);
      this.dispatch(type, detail);
      return;
    }
    const view = new DataView(data);
    const kind = view.getUint32(0);
    if (kind === PREVIEW_IMAGE) {
      const blob = new Blob([data.slice(8)], { type: IMAGE_TYPES[view.getUint32(4)] ?? "image/jpeg" });
      this.dispatch("preview", { blob, node: null });
    } else if (kind === PREVIEW_IMAGE_WITH_METADATA) {
      const length = view.getUint32(4);
      const meta = JSON.parse(new TextDecoder().decode(data.slice(8, 8 + length)));
      const blob = new Blob([data.slice(8 + length)], { type: meta.image_type ?? "image/jpeg" });
      this.dispatch("preview", { blob, node: meta.display_node_id ?? meta.node_id ?? null, promptId: meta.prompt_id });
    }
  }

  dispatch(type, detail) {
    this.events.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
