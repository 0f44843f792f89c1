"""An example plugin pack: one node in ComfyUI's classic (V1) style, one in sdflow's native style.

sdflow imports every package and `.py` file in `custom_nodes/` at start-up and registers what it
exports in `NODE_CLASS_MAPPINGS` (either style) and `NODE_DISPLAY_NAME_MAPPINGS`. `WEB_DIRECTORY`
names the folder of editor scripts the server lists at `/extensions` and the editor loads.
"""

from .brightness import ImageBrightnessContrast
from .grid import ImageGrid

NODE_CLASS_MAPPINGS = {
    "ImageBrightnessContrast": ImageBrightnessContrast,
    "ImageGrid": ImageGrid,
}
NODE_DISPLAY_NAME_MAPPINGS = {"ImageBrightnessContrast": "Brightness / Contrast"}
WEB_DIRECTORY = "./web"
