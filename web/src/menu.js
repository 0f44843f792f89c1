/** The top menu bar: groups open as drop-down lists, items without a group are plain buttons. */

/**
 * Builds the menu in `bar` with the drop-downs `order` first; returns
 * `addItem({label, action, group})`, which returns the item's button.
 */
export function createMenu(bar, order = []) {
  const groups = new Map();
  const closeAll = () => groups.forEach(({ list }) => (list.hidden = true));
  document.addEventListener("pointerdown", (event) => {
    if (!bar.contains(event.target)) closeAll();
  });

  const group = (name) => {
    if (groups.has(name)) return groups.get(name);
    const wrapper = Object.assign(document.createElement("div"), { className: "menu-group" });
    const title = Object.assign(document.createElement("button"), { type: "button", className: "menu-title", textContent: name });
    const list = Object.assign(document.createElement("div"), { className: "menu-list", hidden: true });
    list.setAttribute("role", "menu");
    wrapper.dataset.group = name;
    title.onclick = () => {
      const open = list.hidden;
      closeAll();
      list.hidden = !open;
    };
    wrapper.append(title, list);
    bar.append(wrapper);
    groups.set(name, { list });
    return groups.get(name);
  };

  order.forEach(group);
  return function addItem({ label, action, group: name }) {
    const button = Object.assign(document.createElement("button"), { type: "button", textContent: label });
    button.dataset.label = label;
    button.onclick = () => {
      closeAll();
      action();
    };
    if (name) {
      button.className = "menu-item";
      button.setAttribute("role", "menuitem");
      group(name).list.append(button);
    } else {
      button.className = "menu-button";
      bar.append(button);
    }
    return button;
  };
}
