"""A node written in ComfyUI's V1 convention; it imports nothing from sdflow and runs in ComfyUI too."""


class ImageBrightnessContrast:
    """Shift brightness and scale contrast around mid-grey."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": ("IMAGE",),
                "brightness": ("FLOAT", {"default": 0.0, "min": -1.0, "max": 1.0, "step": 0.01}),
                "contrast": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 3.0, "step": 0.01}),
            }
        }

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "adjust"
    CATEGORY = "example"
    DESCRIPTION = "Shift brightness and scale contrast around mid-grey."

    def adjust(self, image, brightness, contrast):
        return (((image - 0.5) * contrast + 0.5 + brightness).clamp(0.0, 1.0),)
