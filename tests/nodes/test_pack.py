"""The built-in pack as the engine sees it: /object_info, and prompts run end to end."""

import json

import numpy as np
import pytest
from PIL import Image as PILImage

import nodes
from engine.executor import PromptInvalid
from engine.workflow.convert import convert_workflow
from tests.conftest import COMFY_WORKFLOWS

EXPECTED_ORDERS = {
    "PrimitiveInt": ["value"],
    "LoadImage": ["image"],
    "LoadImageMask": ["image", "channel"],
    "SaveImage": ["images", "filename_prefix"],
    "PreviewImage": ["images"],
    "ImageScale": ["image", "upscale_method", "width", "height", "crop"],
    "ImageScaleBy": ["image", "upscale_method", "scale_by"],
    "ImageScaleToTotalPixels": ["image", "upscale_method", "megapixels"],
    "ImageBatch": ["image1", "image2"],
    "EmptyImage": ["width", "height", "batch_size", "color"],
    "ImagePadForOutpaint": ["image", "left", "top", "right", "bottom", "feathering"],
    "ImageCrop": ["image", "width", "height", "x", "y"],
    "ImageCompositeMasked": ["destination", "source", "x", "y", "resize_source"],
    "SolidMask": ["value", "width", "height"],
    "ImageToMask": ["image", "channel"],
    "MaskComposite": ["destination", "source", "x", "y", "operation"],
    "FeatherMask": ["mask", "left", "top", "right", "bottom"],
    "GrowMask": ["mask", "expand", "tapered_corners"],
    "ThresholdMask": ["mask", "value"],
}


def test_every_node_is_registered(runtime):
    assert runtime.registry.errors == []
    info = runtime.registry.object_info(runtime.folders)
    names = {cls.definition.class_type for cls in nodes.NODES}
    assert len(names) == len(nodes.NODES)  # no duplicates
    assert names <= set(info) and set(EXPECTED_ORDERS) <= names
    for name, order in EXPECTED_ORDERS.items():
        assert info[name]["input_order"]["required"] == order, name
    assert info["ImageCompositeMasked"]["input_order"]["optional"] == ["mask"]
    assert info["ImageCompare"]["input_order"] == {"optional": ["image_a", "image_b"], "required": ["compare_view"]}


def test_object_info_details(runtime):
    (runtime.folders.root("input") / "a.png").write_bytes(b"")
    (runtime.folders.root("input") / "notes.txt").write_bytes(b"")
    info = runtime.registry.object_info(runtime.folders)
    assert info["LoadImage"]["input"]["required"]["image"] == [["a.png"], {"image_upload": True}]
    assert info["LoadImage"]["output"] == ["IMAGE", "MASK"] and info["LoadImage"]["display_name"] == "Load Image"
    assert info["LoadImageMask"]["input"]["required"]["image"][1] == {"image_upload": True}
    assert info["PrimitiveInt"]["input"]["required"]["value"][1]["control_after_generate"] is True
    assert info["ImageScale"]["input"]["required"]["width"] == ["INT", {"default": 512, "min": 0, "max": 16384, "step": 1}]
    assert info["EmptyImage"]["input"]["required"]["color"][1]["display"] == "color"
    assert info["SaveImage"]["output_node"] and info["SaveImage"]["output"] == []
    assert info["ImageCompare"]["input"]["required"]["compare_view"] == ["IMAGECOMPARE", {"socketless": True}]
    display = {name: info[name]["display_name"] for name in ("ImageScale", "ImageScaleBy", "ImagePadForOutpaint", "MaskToImage", "GrowMask")}
    assert display == {
        "ImageScale": "Upscale Image",
        "ImageScaleBy": "Upscale Image By",
        "ImagePadForOutpaint": "Pad Image for Outpainting",
        "MaskToImage": "Convert Mask to Image",
        "GrowMask": "Grow Mask",
    }


def _outpaint_prompt(prefix="e2e"):
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 6, "batch_size": 1, "color": 0x0000FF}},
        "2": {
            "class_type": "ImagePadForOutpaint",
            "inputs": {"image": ["1", 0], "left": 8, "top": 0, "right": 0, "bottom": 0, "feathering": 0},
        },
        "3": {"class_type": "MaskToImage", "inputs": {"mask": ["2", 1]}},
        "4": {"class_type": "ImageBatch", "inputs": {"image1": ["2", 0], "image2": ["3", 0]}},
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": prefix}},
    }


def test_prompt_runs_end_to_end(runtime):
    prompt = _outpaint_prompt()
    workflow = {"nodes": [], "links": [], "version": 0.4}
    result = runtime.executor.execute(prompt, extra_data={"extra_pnginfo": {"workflow": workflow}})
    assert result.ok, result.failures
    entries = result.ui["5"]["images"]
    assert [e["filename"] for e in entries] == ["e2e_00001_.png", "e2e_00002_.png"]
    padded = np.array(PILImage.open(runtime.folders.output / "e2e_00001_.png"))
    assert padded.shape == (6, 16, 3)
    assert (padded[:, :8] == 127).all()  # grey padding: 0.5 → 127
    assert (padded[:, 8:] == [0, 0, 255]).all()  # the blue original
    mask = np.array(PILImage.open(runtime.folders.output / "e2e_00002_.png"))
    assert (mask[:, :8] == 255).all() and (mask[:, 8:] == 0).all()
    text = PILImage.open(runtime.folders.output / "e2e_00002_.png").text
    assert json.loads(text["prompt"]) == prompt and json.loads(text["workflow"]) == workflow
    # the same prompt again is served from the cache: nothing new is written
    again = runtime.executor.execute(prompt)
    assert again.ok and again.ui["5"] == result.ui["5"]
    assert len(list(runtime.folders.output.iterdir())) == 2


def test_load_image_prompt_and_its_cache_key(runtime):
    path = runtime.folders.root("input") / "in.png"
    PILImage.new("RGBA", (4, 2), (255, 0, 0, 255)).save(path)
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "in.png"}},
        "2": {"class_type": "ImageScale", "inputs": {"image": ["1", 0], "upscale_method": "nearest-exact", "width": 0, "height": 4, "crop": "disabled"}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    }
    first = runtime.executor.execute(prompt)
    assert first.ok and first.executed == ["1", "2", "3"]
    preview = first.ui["3"]["images"][0]
    assert preview["type"] == "temp"
    assert PILImage.open(runtime.folders.temp / preview["filename"]).size == (8, 4)
    assert runtime.executor.execute(prompt).executed == []
    PILImage.new("RGBA", (4, 2), (0, 255, 0, 255)).save(path)  # a new file under the same name runs again
    assert runtime.executor.execute(prompt).executed == ["1", "2", "3"]


def test_missing_input_file_fails_validation(runtime):
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "nowhere.png"}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }
    with pytest.raises(PromptInvalid) as err:
        runtime.executor.execute(prompt)
    errors = err.value.validation.node_errors["1"]["errors"]
    assert errors[0]["type"] == "custom_validation_failed" and "Invalid image file: nowhere.png" in errors[0]["details"]


def test_bad_prefix_is_refused_at_validation(runtime):
    with pytest.raises(PromptInvalid) as err:
        runtime.executor.execute(_outpaint_prompt(prefix="../evil"))
    errors = err.value.validation.node_errors["5"]["errors"]
    assert errors[0]["extra_info"]["input_name"] == "filename_prefix"
    assert not (runtime.folders.base / "evil_00001_.png").exists()


def test_compare_and_mask_nodes_in_a_prompt(runtime):
    prompt = {
        "1": {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 6, "height": 6}},
        "2": {"class_type": "SolidMask", "inputs": {"value": 0.0, "width": 6, "height": 6}},
        "3": {"class_type": "MaskComposite", "inputs": {"destination": ["2", 0], "source": ["1", 0], "x": 2, "y": 2, "operation": "add"}},
        "4": {"class_type": "GrowMask", "inputs": {"mask": ["3", 0], "expand": -1, "tapered_corners": True}},
        "5": {"class_type": "MaskToImage", "inputs": {"mask": ["4", 0]}},
        "6": {"class_type": "ImageInvert", "inputs": {"image": ["5", 0]}},
        "7": {"class_type": "ImageCompare", "inputs": {"image_a": ["5", 0], "image_b": ["6", 0], "compare_view": {"before": "", "after": ""}}},
    }
    result = runtime.executor.execute(prompt)
    assert result.ok, result.failures
    a = np.array(PILImage.open(runtime.folders.temp / result.ui["7"]["a_images"][0]["filename"]))
    b = np.array(PILImage.open(runtime.folders.temp / result.ui["7"]["b_images"][0]["filename"]))
    expected = np.zeros((6, 6), dtype=np.uint8)
    expected[3:, 3:] = 255  # the pasted 4×4 block shrunk by one pixel (the mask's edge does not erode)
    assert (a[..., 0] == expected).all() and (b[..., 0] == 255 - expected).all()


def test_shared_model_free_workflow_runs(runtime):
    """ComfyUI's image-upscale utility workflow (Load Image → Upscale Image By → Save, Image Compare) runs as saved."""
    workflow = json.loads((COMFY_WORKFLOWS / "utility_interpolation_image_upscale.json").read_text())
    PILImage.new("RGB", (5, 3), (200, 100, 50)).save(runtime.folders.root("input") / "pray.png")
    prompt = convert_workflow(workflow, runtime.registry.specs(runtime.folders)).to_json()
    result = runtime.executor.execute(prompt, extra_data={"extra_pnginfo": {"workflow": workflow}})
    assert result.ok, result.failures
    (saved,) = result.ui["5"]["images"]
    image = PILImage.open(runtime.folders.output / saved["filename"])
    assert image.size == (10, 6) and image.getpixel((4, 2)) == (200, 100, 50)
    assert json.loads(image.text["workflow"]) == workflow
    compare = result.ui["7"]
    assert len(compare["a_images"]) == len(compare["b_images"]) == 1
