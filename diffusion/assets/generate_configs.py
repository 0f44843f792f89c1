"""Write the diffusers-style config folders of every supported family into diffusion/assets/configs.

    python -m diffusion.assets.generate_configs [OUTDIR]

Configs (no weights) are built from the published architecture facts of each family through
diffusers' and transformers' own config classes, so every field has the value those libraries
expect. Loading infers the sizes of an actual file from its tensors and takes everything else
(activation functions, schedules, prediction type, scaling factors) from these folders.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from accelerate import init_empty_weights
from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig

OUT = Path(__file__).parent / "configs"

CLIP_L = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, projection_dim=768, hidden_act="quick_gelu")
CLIP_H = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16, projection_dim=1024, hidden_act="gelu")
CLIP_G = dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=20, projection_dim=1280, hidden_act="gelu")

SD_UNET = dict(
    down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
    up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
    block_out_channels=[320, 640, 1280, 1280],
    layers_per_block=2,
    sample_size=64,
)
SD1_UNET = dict(SD_UNET, attention_head_dim=8, cross_attention_dim=768)
SD2_UNET = dict(SD_UNET, attention_head_dim=[5, 10, 20, 20], cross_attention_dim=1024, use_linear_projection=True)
SDXL_UNET = dict(
    down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    block_out_channels=[320, 640, 1280],
    layers_per_block=2,
    transformer_layers_per_block=[1, 2, 10],
    attention_head_dim=[5, 10, 20],
    cross_attention_dim=2048,
    use_linear_projection=True,
    addition_embed_type="text_time",
    addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816,
    sample_size=128,
)
REFINER_UNET = dict(
    down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    block_out_channels=[384, 768, 1536, 1536],
    layers_per_block=2,
    transformer_layers_per_block=4,
    attention_head_dim=[6, 12, 24, 24],
    cross_attention_dim=1280,
    use_linear_projection=True,
    addition_embed_type="text_time",
    addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2560,
    sample_size=128,
)
SD_VAE = dict(
    down_block_types=["DownEncoderBlock2D"] * 4,
    up_block_types=["UpDecoderBlock2D"] * 4,
    block_out_channels=[128, 256, 512, 512],
    layers_per_block=2,
    latent_channels=4,
    sample_size=512,
)
SDXL_VAE = dict(SD_VAE, sample_size=1024, scaling_factor=0.13025, force_upcast=True)

#: family → (unet, vae, {subfolder: (text config, with projection)}, prediction type, pipeline class)
FAMILIES: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, tuple[dict[str, Any], bool]], str, str]] = {
    "sd15": (SD1_UNET, SD_VAE, {"text_encoder": (CLIP_L, False)}, "epsilon", "StableDiffusionPipeline"),
    "sd15-inpaint": (dict(SD1_UNET, in_channels=9), SD_VAE, {"text_encoder": (CLIP_L, False)}, "epsilon", "StableDiffusionInpaintPipeline"),
    "sd2": (SD2_UNET, SD_VAE, {"text_encoder": (CLIP_H, False)}, "epsilon", "StableDiffusionPipeline"),
    "sd2-v": (dict(SD2_UNET, sample_size=96), dict(SD_VAE, sample_size=768), {"text_encoder": (CLIP_H, False)}, "v_prediction", "StableDiffusionPipeline"),
    "sd2-inpaint": (dict(SD2_UNET, in_channels=9), SD_VAE, {"text_encoder": (CLIP_H, False)}, "epsilon", "StableDiffusionInpaintPipeline"),
    "sdxl": (SDXL_UNET, SDXL_VAE, {"text_encoder": (CLIP_L, False), "text_encoder_2": (CLIP_G, True)}, "epsilon", "StableDiffusionXLPipeline"),
    "sdxl-refiner": (REFINER_UNET, SDXL_VAE, {"text_encoder_2": (CLIP_G, True)}, "epsilon", "StableDiffusionXLImg2ImgPipeline"),
}


def write_family(folder: Path, unet: dict, vae: dict, encoders: dict, prediction: str, pipeline: str) -> None:
    """One diffusers-style config folder (configs only)."""
    with init_empty_weights():
        UNet2DConditionModel(**unet).save_config(folder / "unet")
        AutoencoderKL(**vae).save_config(folder / "vae")
    index: dict[str, Any] = {"_class_name": pipeline, "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}
    for subfolder, (text, projected) in encoders.items():
        architecture = "CLIPTextModelWithProjection" if projected else "CLIPTextModel"
        config = CLIPTextConfig(**text, vocab_size=49408, max_position_embeddings=77, bos_token_id=49406, eos_token_id=49407, pad_token_id=1)
        config.architectures = [architecture]
        config.save_pretrained(folder / subfolder)
        index[subfolder] = ["transformers", architecture]
    sdxl = "XL" in pipeline
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
        prediction_type=prediction, steps_offset=1, timestep_spacing="leading" if sdxl else "linspace",
    )
    scheduler.save_config(folder / "scheduler")
    index["scheduler"] = ["diffusers", "EulerDiscreteScheduler"]
    (folder / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")


def main(out: Path = OUT) -> None:
    for name, (unet, vae, encoders, prediction, pipeline) in FAMILIES.items():
        write_family(out / name, unet, vae, encoders, prediction, pipeline)
        print(out / name)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
