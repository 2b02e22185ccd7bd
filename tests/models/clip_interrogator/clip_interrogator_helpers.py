"""Helpers for the clip_interrogator tests: tiny random-weight CLIP + BLIP staged as `make stage-weights` lays
them out (<root>/clip, <root>/caption, <root>/term_embeddings.safetensors), tiny term tables, the properties DJL
would pass, the package loader, and a fake text encoder with known geometry for the ranking logic."""

from __future__ import annotations

import gzip
from pathlib import Path

import djl_settings
import package_loader

ROOT = Path(__file__).resolve().parents[3]
PACKAGE_DIR = ROOT / "model_packages" / "clip_interrogator"
CLIP_NAME = "tiny-random-clip"
CAPTION_NAME = "tiny-random-blip"

ARTISTS = ["Claude Monet", "Pablo Picasso", "Greg Rutkowski", "Hokusai"]
FLAVORS = [
    "highly detailed",
    "sharp focus",
    "intricate",
    "digital art",
    "oil painting",
    "vintage",
    "dark",
    "bright colors",
    "soft light",
    "trending",
    "matte painting",
    "concept art",
    "studio lighting",
    "bokeh",
    "8k",
    "cinematic",
    "pastel colors",
    "minimalism",
    "surreal",
    "volumetric lighting",
    "ultra realistic",
    "watercolor",
    "smooth",
    "dramatic",
    "octane render",
    "golden hour",
    "wide angle",
    "macro",
    "noir",
    "vibrant",
]
MEDIUMS = ["a photo", "a painting", "a sketch", "a 3d render"]
MOVEMENTS = ["art nouveau", "impressionism", "cubism"]
NEGATIVE = ["blurry", "bad anatomy", "lowres", "watermark"]


def load_package_module(package: str = "clip_interrogator", module: str = "model"):
    return package_loader.load_package_module(package, module)


def write_terms(folder: Path, extra_flavors: tuple[str, ...] = ()) -> Path:
    """Tiny term tables in the package's format (flavors gzipped, as shipped)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, terms in (("artists", ARTISTS), ("mediums", MEDIUMS), ("movements", MOVEMENTS), ("negative", NEGATIVE)):
        (folder / f"{name}.txt").write_text("\n".join(terms) + "\n", encoding="utf-8")
    with gzip.open(folder / "flavors.txt.gz", "wt", encoding="utf-8") as f:
        f.write("\n".join(FLAVORS + list(extra_flavors)) + "\n\n")
    return folder


def stage_weights(root: Path, seed: int = 0) -> Path:
    """<root>/clip and <root>/caption, as the weight-staging command writes them."""
    import tiny_clip

    words = tiny_clip.DEFAULT_WORDS + tuple(
        w for t in ARTISTS + FLAVORS + MEDIUMS + MOVEMENTS + NEGATIVE for w in t.lower().split()
    )
    tiny_clip.save_tiny_clip(root / "clip", words=words, seed=seed)
    tiny_clip.save_tiny_blip(root / "caption", seed=seed)
    return root


def properties(root: Path, terms_dir: Path, cache_dir: Path, **extra: object) -> dict:
    """What DJL hands the initialisation request, with the tiny weights staged in `root`, the tiny term tables and
    small ranking sizes (the tiny tables have 30 flavors)."""
    tiny = {
        **{
            "model_name": CLIP_NAME,
            "caption_model_name": CAPTION_NAME,
            "terms_dir": terms_dir,
            "term_cache_dir": cache_dir,
        },
        **{"flavor_intermediate_count": 16, "caption_max_length": 5, "chunk_size": 64},
    }
    return djl_settings.package_properties("clip_interrogator", root, **{**tiny, **extra})


class GeometryEncoder:
    """A fake CLIP text encoder with known geometry: each known term is a fixed vector, a prompt's embedding is the
    normalised sum of the vectors of the terms it contains (split on ', '), unknown parts map to `other`."""

    def __init__(self, vectors: dict[str, list[float]], max_terms: int = 100) -> None:
        import torch

        self.vectors = {k: torch.tensor(v, dtype=torch.float32) for k, v in vectors.items()}
        self.dim = len(next(iter(vectors.values())))
        self.max_terms = max_terms
        self.calls = 0

    def encode(self, texts):
        import torch

        self.calls += 1
        rows = []
        for text in texts:
            total = torch.zeros(self.dim)
            for part in text.split(", "):
                total += self.vectors.get(part, self.vectors.get("other", torch.zeros(self.dim)))
            rows.append(torch.nn.functional.normalize(total, dim=0))
        return torch.stack(rows)

    def fits(self, text: str) -> bool:
        return len(text.split(", ")) <= self.max_terms
