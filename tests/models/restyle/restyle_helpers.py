"""A tiny random-weight SDXL img2img pipeline, built offline from small configs and saved with save_pretrained the
way `make stage-weights` lays the real one out (model_index.json and one folder per component, fp16-variant
weight files), plus what the restyle tests and bench/restyle.py share: the properties DJL would pass, a moto S3
bucket holding the input images, and request bodies.

The architecture is SDXL's, shrunk: two CLIP text encoders (the second with a projection, whose pooled output and
the six size/crop ids form the UNet's added "text_time" embedding), a two-level UNet with cross-attention, a
four-level VAE (so the latents are 1/8 of the image, as SDXL's), Euler discrete scheduler with SDXL's betas.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import package_loader
import tiny_clip

PACKAGE = "restyle"
MODEL_NAME = "tiny-random-sdxl"
BUCKET = "vlp-requests-test"
TEXT_WIDTH = 32
TIME_EMBED_DIM = 8


def load_package_module(module: str = "model") -> Any:
    return package_loader.load_package_module(PACKAGE, module)


def build_pipeline(seed: int = 0, words: tuple[str, ...] = tiny_clip.DEFAULT_WORDS) -> Any:
    """StableDiffusionXLImg2ImgPipeline with random weights (~1M parameters)."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLImg2ImgPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    tokenizer = tiny_clip.clip_tokenizer(words)
    vocab = len(tokenizer)
    text = CLIPTextConfig(
        vocab_size=vocab,
        hidden_size=TEXT_WIDTH,
        intermediate_size=TEXT_WIDTH * 2,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=tiny_clip.CONTEXT_LENGTH,
        bos_token_id=vocab - 2,
        eos_token_id=vocab - 1,
        pad_token_id=vocab - 1,
        projection_dim=TEXT_WIDTH,
        hidden_act="gelu",
    )
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        transformer_layers_per_block=(1, 1),
        cross_attention_dim=2 * TEXT_WIDTH,  # both encoders' hidden states, concatenated
        addition_embed_type="text_time",
        addition_time_embed_dim=TIME_EMBED_DIM,
        # six ids (original size, crop corner, target size) + the second encoder's pooled projection
        projection_class_embeddings_input_dim=6 * TIME_EMBED_DIM + TEXT_WIDTH,
        norm_num_groups=8,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(8, 8, 8, 8),  # four levels: a 1/8 latent, as SDXL's VAE
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=64,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        timestep_spacing="leading",
    )
    return StableDiffusionXLImg2ImgPipeline(
        vae=vae,
        text_encoder=CLIPTextModel(text).eval(),
        text_encoder_2=CLIPTextModelWithProjection(text).eval(),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet.eval(),
        scheduler=scheduler,
        add_watermarker=False,
    )


def save_tiny_sdxl(path: str | Path, seed: int = 0, variant: str | None = "fp16") -> Path:
    """The pipeline directory, as staged: save_pretrained with the fp16 variant's file names (the weights stay
    float32: CPU runs in float32)."""
    path = Path(path)
    build_pipeline(seed).save_pretrained(path, variant=variant, safe_serialization=True)
    return path


def properties(model_dir: Path, **extra: str) -> dict[str, str]:
    """What DJL passes the worker: serving.properties' options, with option.model_id resolved to the folder."""
    import djl_double

    environ = {"OPTION_MODEL_ID": str(model_dir), "OPTION_MODEL_NAME": MODEL_NAME, "OPTION_DTYPE": "fp16"}
    props = djl_double.worker_properties(package_loader.ROOT / "model_packages" / PACKAGE, environ)
    props.update(extra)
    return props


def put_image(s3: Any, key: str, size: tuple[int, int] = (64, 64), fmt: str = "PNG", seed: int = 0) -> dict:
    """An image uploaded to the test bucket; returns the request's `image` reference."""
    s3.put_object(Bucket=BUCKET, Key=key, Body=tiny_clip.image_bytes(size, fmt, seed))
    return {"bucket": BUCKET, "key": key}


def body(image: dict | str, name: str = "one", **fields: Any) -> dict:
    """A valid request: a 2-step schedule (at strength 0.6 one denoising step runs), a fixed seed."""
    request: dict[str, Any] = {
        "image": image,
        "prompt": "a red dog in the style of an oil painting",
        "negative_prompt": "blurry",
        "strength": 0.6,
        "steps": 2,
        "guidance_scale": 7.0,
        "seed": 1234,
        "output": {"bucket": BUCKET, "key": f"results/caller/{name}/restyled.png"},
    }
    request.update(fields)
    return request
