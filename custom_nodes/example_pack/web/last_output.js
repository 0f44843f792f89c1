// The example pack's editor script: remembers the images of the last finished output node and
// adds a menu entry that names them. It uses only the documented `window.sdflow` API (web/EXTENSIONS.md).

const { sdflow } = window;
let lastImages = [];

sdflow.registerExtension({
  name: "example_pack.last_output",
  setup(app) {
    sdflow.on("executed", (detail) => {
      const images = detail.output?.images ?? [];
      if (images.length) lastImages = images;
    });
    sdflow.addMenuItem({
      label: "Last output",
      group: "Example pack",
      action: () =>
        app.showMessage(
          lastImages.length ? `Last output: ${lastImages.map((image) => image.filename).join(", ")}` : "Nothing has been generated yet.",
          { level: "info" },
        ),
    });
  },
});
