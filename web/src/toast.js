/** Short messages in the corner of the editor; errors stay longer and every message can be closed. */

const DURATION_MS = { info: 4000, success: 4000, warning: 8000, error: 12000 };

/** Shows `text` in `container` with `level` (info, success, warning, error); returns the element. */
export function toast(container, text, { level = "info" } = {}) {
  const message = Object.assign(document.createElement("div"), { className: `toast toast-${level}` });
  message.setAttribute("role", level === "error" ? "alert" : "status");
  const body = Object.assign(document.createElement("span"), { textContent: text });
  const close = Object.assign(document.createElement("button"), { type: "button", className: "toast-close", textContent: "×", title: "Close" });
  close.onclick = () => message.remove();
  message.append(body, close);
  container.append(message);
  setTimeout(() => message.remove(), DURATION_MS[level] ?? DURATION_MS.info);
  return message;
}
