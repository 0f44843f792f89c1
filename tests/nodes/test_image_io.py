"""Load Image, Load Image (as Mask), Save Image, Preview Image and Image Compare on real files."""

import json
import re
from datetime import datetime

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from engine import NodeInputError
from nodes.image_io import ImageCompare, LoadImage, LoadImageMask, PreviewImage, SaveImage


def _save(folders, name, image: PILImage.Image, kind="input", **kwargs):
    path = folders.root(kind) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **kwargs)
    return path


def _rgba():
    pixels = np.array(
        [[[255, 0, 0, 255], [0, 255, 0, 128]], [[0, 0, 255, 0], [10, 20, 30, 255]]], dtype=np.uint8
    )  # 2×2 RGBA
    return PILImage.fromarray(pixels, "RGBA")


# ---- LoadImage ------------------------------------------------------------------------------


def test_load_rgba_png_mask_is_one_minus_alpha(folders, make_context):
    _save(folders, "rgba.png", _rgba())
    image, mask = LoadImage(image="rgba.png").execute(make_context())
    assert image.shape == (1, 2, 2, 3) and image.dtype == torch.float32
    assert torch.equal(image[0, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
    assert torch.equal(image[0, 1, 1], torch.tensor([10, 20, 30], dtype=torch.float32) / 255)
    expected = 1.0 - torch.tensor([[[255, 128], [0, 255]]], dtype=torch.float32) / 255
    assert mask.shape == (1, 2, 2) and torch.equal(mask, expected)


def test_load_rgb_png_gives_empty_64x64_mask(folders, make_context):
    _save(folders, "rgb.png", _rgba().convert("RGB"))
    image, mask = LoadImage(image="rgb.png").execute(make_context())
    assert image.shape == (1, 2, 2, 3)
    assert mask.shape == (1, 64, 64) and not mask.any()


def test_load_applies_exif_orientation(folders, make_context):
    pixels = np.zeros((2, 4, 3), dtype=np.uint8)  # 4 wide, 2 high: left half red, right half blue
    pixels[:, :2] = (255, 0, 0)
    pixels[:, 2:] = (0, 0, 255)
    exif = PILImage.Exif()
    exif[0x0112] = 6  # the camera was turned: rotate 90° clockwise to display
    _save(folders, "turned.jpg", PILImage.fromarray(pixels), exif=exif, quality=100)
    image, _ = LoadImage(image="turned.jpg").execute(make_context())
    assert image.shape == (1, 4, 2, 3)
    # the left (red) half is now on top
    assert image[0, 0, :, 0].min() > 0.8 and image[0, 0, :, 2].max() < 0.2
    assert image[0, 3, :, 2].min() > 0.8 and image[0, 3, :, 0].max() < 0.2


def test_load_gif_frames_become_a_batch(folders, make_context):
    frames = [PILImage.new("RGB", (3, 2), color) for color in ((255, 0, 0), (0, 0, 255))]
    _save(folders, "anim.gif", frames[0], save_all=True, append_images=frames[1:], duration=100, loop=0)
    image, mask = LoadImage(image="anim.gif").execute(make_context())
    assert image.shape == (2, 2, 3, 3)
    assert torch.allclose(image[0, ..., 0], torch.ones(2, 3)) and torch.allclose(image[1, ..., 2], torch.ones(2, 3))
    assert mask.shape == (2, 64, 64) and not mask.any()


def test_load_skips_frames_of_another_size(folders, make_context):
    pages = [PILImage.new("RGB", (4, 4), "white"), PILImage.new("RGB", (2, 2), "black"), PILImage.new("RGB", (4, 4), "black")]
    _save(folders, "pages.tiff", pages[0], save_all=True, append_images=pages[1:])
    image, _ = LoadImage(image="pages.tiff").execute(make_context())
    assert image.shape == (2, 4, 4, 3)
    assert image[0].min() == 1.0 and image[1].max() == 0.0


def test_frames_with_and_without_alpha_share_one_mask_batch(folders, make_context):
    pages = [_rgba().convert("RGB"), _rgba()]
    _save(folders, "mixed.tiff", pages[0], save_all=True, append_images=pages[1:])
    _, mask = LoadImage(image="mixed.tiff").execute(make_context())
    assert mask.shape == (2, 2, 2)
    assert not mask[0].any()  # no alpha: fully opaque
    assert torch.equal(mask[1], 1.0 - torch.tensor([[255, 128], [0, 255]], dtype=torch.float32) / 255)


def test_load_palette_transparency_gives_a_mask(folders, make_context):
    palette = PILImage.fromarray(np.array([[0, 1], [1, 1]], dtype=np.uint8), "P")
    palette.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    _save(folders, "palette.png", palette, transparency=0)
    image, mask = LoadImage(image="palette.png").execute(make_context())
    assert torch.equal(mask, torch.tensor([[[1.0, 0.0], [0.0, 0.0]]]))
    assert torch.equal(image[0, 1, 1], torch.ones(3))


def test_load_16_bit_png_is_scaled_down(folders, make_context):
    pixels = np.array([[0, 32896, 65535]], dtype=np.uint16)
    _save(folders, "deep.png", PILImage.fromarray(pixels))
    image, _ = LoadImage(image="deep.png").execute(make_context())
    assert image.shape == (1, 1, 3, 3)
    assert image[0, 0, :, 0].tolist() == pytest.approx([0.0, 129 / 255, 1.0])
    assert torch.equal(image[..., 0], image[..., 2])


def test_load_from_subfolder_and_annotated_names(folders, make_context):
    _save(folders, "sub/a.png", _rgba())
    _save(folders, "b.png", _rgba(), kind="output")
    for name in ("sub/a.png", "b.png [output]"):
        node = LoadImage(image=name)
        assert node.check_inputs(make_context()) is None
        assert node.execute(make_context())[0].shape == (1, 2, 2, 3)


def test_check_inputs_reports_missing_and_escaping_files(folders, make_context):
    _save(folders, "x.png", _rgba(), kind="output")
    assert LoadImage(image="missing.png").check_inputs(make_context()) == "Invalid image file: missing.png"
    escape = LoadImage(image="../x.png").check_inputs(make_context())
    assert escape.startswith("Invalid image file: ../x.png") and "goes up a folder" in escape
    assert LoadImage(image="/etc/passwd").check_inputs(make_context()) is not None
    # a linked name (not a constant) is checked when it arrives, not before
    assert LoadImage.model_construct(image=None).check_inputs(make_context()) is None


def test_unreadable_file_is_a_node_input_error(folders, make_context):
    (folders.root("input") / "bad.png").write_bytes(b"not an image")
    with pytest.raises(NodeInputError) as err:
        LoadImage(image="bad.png").execute(make_context())
    assert err.value.input_name == "image"


def test_fingerprint_follows_file_content(folders, make_context):
    _save(folders, "f.png", _rgba())
    node = LoadImage(image="f.png")
    first = node.fingerprint(make_context())
    assert first == node.fingerprint(make_context())
    _save(folders, "f.png", _rgba().rotate(90))
    assert node.fingerprint(make_context()) != first
    assert np.isnan(LoadImage.model_construct(image=None).fingerprint(make_context()))


# ---- LoadImageMask --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "channel, expected",
    [
        ("alpha", [[0.0, 127 / 255], [1.0, 0.0]]),
        ("red", [[1.0, 0.0], [0.0, 10 / 255]]),
        ("green", [[0.0, 1.0], [0.0, 20 / 255]]),
        ("blue", [[0.0, 0.0], [1.0, 30 / 255]]),
    ],
)
def test_load_image_mask_channels(channel, expected, folders, make_context):
    _save(folders, "rgba.png", _rgba())
    mask = LoadImageMask(image="rgba.png", channel=channel).execute(make_context())
    assert mask.shape == (1, 2, 2)
    assert torch.allclose(mask[0], torch.tensor(expected))


def test_load_image_mask_of_rgb_file(folders, make_context):
    _save(folders, "rgb.png", _rgba().convert("RGB"))
    assert not LoadImageMask(image="rgb.png", channel="alpha").execute(make_context()).any()
    grey = PILImage.fromarray(np.array([[0, 255]], dtype=np.uint8), "L")
    _save(folders, "grey.png", grey)
    assert LoadImageMask(image="grey.png", channel="green").execute(make_context()).tolist() == [[[0.0, 1.0]]]


# ---- SaveImage / PreviewImage / ImageCompare ------------------------------------------------


def _images(batch=2, height=2, width=3):
    return torch.linspace(0, 1, batch * height * width * 3).reshape(batch, height, width, 3)


def test_save_image_names_and_pixels(folders, make_context):
    images = _images()
    result = SaveImage(images=images, filename_prefix="ComfyUI").execute(make_context())
    assert result.ui == {
        "images": [
            {"filename": "ComfyUI_00001_.png", "subfolder": "", "type": "output"},
            {"filename": "ComfyUI_00002_.png", "subfolder": "", "type": "output"},
        ]
    }
    saved = PILImage.open(folders.output / "ComfyUI_00002_.png")
    expected = np.clip(255.0 * images[1].numpy(), 0, 255).astype(np.uint8)
    assert saved.mode == "RGB" and np.array_equal(np.array(saved), expected)
    assert not [p for p in folders.output.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_save_image_counter_continues_after_existing_files(folders, make_context):
    (folders.root("output") / "shot_00041_.png").touch()
    (folders.root("output") / "shot_extra_00100_.png").touch()
    result = SaveImage(images=_images(1), filename_prefix="shot").execute(make_context())
    assert result.ui["images"][0]["filename"] == "shot_00042_.png"
    again = SaveImage(images=_images(1), filename_prefix="shot").execute(make_context())
    assert again.ui["images"][0]["filename"] == "shot_00043_.png"


def test_save_image_subfolder_prefix(folders, make_context):
    result = SaveImage(images=_images(1), filename_prefix="a/b/name").execute(make_context())
    assert result.ui["images"] == [{"filename": "name_00001_.png", "subfolder": "a/b", "type": "output"}]
    assert (folders.output / "a" / "b" / "name_00001_.png").is_file()


@pytest.mark.parametrize("prefix", ["../evil", "a/../../evil", "/tmp/evil"])
def test_save_image_refuses_to_leave_the_output_folder(prefix, folders, make_context):
    with pytest.raises(NodeInputError) as err:
        SaveImage(images=_images(1), filename_prefix=prefix).execute(make_context())
    assert err.value.input_name == "filename_prefix"
    assert not (folders.base / "evil_00001_.png").exists()


def test_save_image_prefix_tokens(folders, make_context):
    before = datetime.now().strftime("%Y-%m-%d")
    result = SaveImage(images=_images(2, height=2, width=3), filename_prefix="%date:yyyy-MM-dd%/img_%width%x%height%_%batch_num%").execute(make_context())
    after = datetime.now().strftime("%Y-%m-%d")
    entries = result.ui["images"]
    assert entries[0]["subfolder"] in (before, after)
    assert [e["filename"] for e in entries] == ["img_3x2_0_00001_.png", "img_3x2_1_00002_.png"]
    assert (folders.output / entries[0]["subfolder"] / "img_3x2_1_00002_.png").is_file()


def test_save_image_embeds_prompt_and_workflow(folders, make_context):
    prompt = {"1": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x", "images": ["2", 0]}}}
    workflow = {"nodes": [{"id": 1, "type": "SaveImage"}], "links": [], "version": 0.4}
    ctx = make_context(prompt=prompt, extra_data={"extra_pnginfo": {"workflow": workflow}})
    SaveImage(images=_images(1), filename_prefix="meta").execute(ctx)
    text = PILImage.open(folders.output / "meta_00001_.png").text
    assert set(text) == {"prompt", "workflow"}
    assert json.loads(text["prompt"]) == prompt and json.loads(text["workflow"]) == workflow


def test_save_image_without_metadata(folders, make_context):
    SaveImage(images=_images(1), filename_prefix="plain").execute(make_context())
    assert PILImage.open(folders.output / "plain_00001_.png").text == {}


def test_preview_image_writes_to_temp(folders, make_context):
    result = PreviewImage(images=_images(2)).execute(make_context())
    entries = result.ui["images"]
    assert [e["type"] for e in entries] == ["temp", "temp"] and {e["subfolder"] for e in entries} == {""}
    assert re.fullmatch(r"ComfyUI_temp_[a-z]{5}_00001_\.png", entries[0]["filename"])
    assert all((folders.temp / e["filename"]).is_file() for e in entries)
    assert not folders.output.exists() or not any(folders.output.iterdir())


def test_image_compare_saves_both_sides(folders, make_context):
    result = ImageCompare(image_a=_images(1), image_b=_images(2), compare_view=None).execute(make_context())
    assert len(result.ui["a_images"]) == 1 and len(result.ui["b_images"]) == 2
    assert result.ui["a_images"][0]["filename"].startswith("comfy.compare.a_temp_")
    assert all(e["type"] == "temp" and (folders.temp / e["filename"]).is_file() for e in result.ui["b_images"])
    only_b = ImageCompare(image_b=_images(1), compare_view={"before": "", "after": ""}).execute(make_context())
    assert only_b.ui["a_images"] == [] and len(only_b.ui["b_images"]) == 1


def test_image_compare_spec(folders):
    spec = ImageCompare.definition.spec(folders)
    view = spec.input("compare_view")
    assert (view.type, view.section, view.is_widget) == ("IMAGECOMPARE", "required", True)
    assert spec.input("image_a").section == "optional" and spec.experimental and spec.output_node


@pytest.mark.parametrize("prefix", ["../escape", "sub/../../escape", "/abs/name", "..\\\\escape"])
def test_save_image_refuses_a_prefix_outside_output_before_running(prefix, runtime) -> None:
    result = runtime.executor.validate({"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
                                        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}}})
    (error,) = result.node_errors["2"]["errors"]
    assert error["type"] == "custom_validation_failed" and error["extra_info"]["input_name"] == "filename_prefix"


def test_save_image_accepts_subfolders_in_the_prefix(runtime) -> None:
    result = runtime.executor.validate({"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
                                        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "a/b/name_%width%"}}})
    assert result.ok and result.node_errors == {}
