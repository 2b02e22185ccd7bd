"""The interrogator's term tables and their CLIP text embeddings.

Tables (data/, from clip-interrogator 0.6.0, MIT: see data/LICENSE.clip-interrogator):
artists ("by X" and "inspired by X"), flavors (about 100,000 terms, shipped gzipped), mediums, movements,
trendings (built from a list of sites, as the original does) and negative (negative mode only).

Their text embeddings are computed once, when the weights are staged, by `precompute_term_embeddings(model_dir)`,
and stored beside the weights as `term_embeddings.safetensors` (float16 rows, L2-normalised). The file records a
digest of every table and the embedding of a probe text, so a worker can tell, at start-up and without a hub,
whether the file matches both the tables it ships and the CLIP weights it loaded.

Beside torch, transformers and safetensors it needs the shared vlp_djl_support (where a model is) and vlp_clip: the
weight-staging command imports it with both folders on sys.path, model_packages/clip_interrogator and
model_packages/shared (model_packages/stage_weights.py).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from vlp_clip import ClipEncoder
from vlp_djl_support import display_name, model_id_fallback, resolve_model_source

logger = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent / "data"
EMBEDDINGS_FILE = "term_embeddings.safetensors"
FORMAT = "vlp-clip-interrogator-terms/1"
PROBE_KEY = "__probe__"
PROBE_TEXT = "a photo of a cat sitting on a red sofa, highly detailed, oil painting"
PROBE_MIN_COSINE = 0.99  # fp16 storage and fp16/fp32 compute differ by far less; another model by far more

POSITIVE_TABLES = ("artists", "flavors", "mediums", "movements", "trendings")
TABLES = (*POSITIVE_TABLES, "negative")

# clip-interrogator 0.6.0's sites, in its order
SITES = (
    "Artstation",
    "behance",
    "cg society",
    "cgsociety",
    "deviantart",
    "dribble",
    "flickr",
    "instagram",
    "pexels",
    "pinterest",
    "pixabay",
    "pixiv",
    "polycount",
    "reddit",
    "shutterstock",
    "tumblr",
    "unsplash",
    "zbrush central",
)
DEFAULT_CLIP_MODEL = "openai/clip-vit-large-patch14"


class TermEmbeddingsMismatch(Exception):
    """A term-embeddings file that cannot be used with these tables or this CLIP model."""


# ---- tables ----


def read_terms(path: Path) -> list[str]:
    """One term per line; blank lines dropped, duplicates dropped (first kept)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        return list(dict.fromkeys(line.strip() for line in f if line.strip()))


def _table_file(folder: Path, name: str) -> Path:
    for candidate in (folder / f"{name}.txt", folder / f"{name}.txt.gz"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"term table {name}.txt(.gz) not found in {folder}")


def load_term_tables(terms_dir: str | os.PathLike | None = None) -> dict[str, list[str]]:
    """The six tables, built as clip-interrogator builds them. `terms_dir` defaults to the package's data/."""
    folder = Path(terms_dir) if terms_dir else DATA_DIR
    artists = read_terms(_table_file(folder, "artists"))
    sites_file = folder / "sites.txt"
    sites = read_terms(sites_file) if sites_file.is_file() else list(SITES)
    trendings = list(sites)
    trendings += [f"trending on {site}" for site in sites]
    trendings += [f"featured on {site}" for site in sites]
    trendings += [f"{site} contest winner" for site in sites]
    return {
        "artists": [f"by {a}" for a in artists] + [f"inspired by {a}" for a in artists],
        "flavors": read_terms(_table_file(folder, "flavors")),
        "mediums": read_terms(_table_file(folder, "mediums")),
        "movements": read_terms(_table_file(folder, "movements")),
        "trendings": list(dict.fromkeys(trendings)),
        "negative": read_terms(_table_file(folder, "negative")),
    }


def table_digest(terms: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(terms).encode("utf-8")).hexdigest()


# ---- text encoding ----


def compute_term_embeddings(encoder: ClipEncoder, tables: Mapping[str, Sequence[str]]) -> dict[str, torch.Tensor]:
    """float16 CPU tensors, one per table, plus the probe embedding under PROBE_KEY."""
    result = {}
    for name, terms in tables.items():
        logger.info("encoding %d %s terms", len(terms), name)
        result[name] = encoder.encode(list(terms)).to("cpu", torch.float16).contiguous()
    result[PROBE_KEY] = encoder.encode([PROBE_TEXT]).to("cpu", torch.float16).contiguous()
    return result


# ---- the embeddings file ----


def save_term_embeddings(
    path: str | os.PathLike,
    embeddings: Mapping[str, torch.Tensor],
    tables: Mapping[str, Sequence[str]],
    clip_model: str,
) -> Path:
    from safetensors.torch import save_file

    path = Path(path)
    dim = int(embeddings[PROBE_KEY].shape[-1])
    metadata = {
        "format": FORMAT,
        "clip_model": clip_model,
        "dim": str(dim),
        "probe_text": PROBE_TEXT,
        "tables": json.dumps(
            {name: {"count": len(terms), "sha256": table_digest(terms)} for name, terms in tables.items()}
        ),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    save_file({k: v.to(torch.float16).contiguous() for k, v in embeddings.items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)  # atomic: a reader never sees half a file
    return path


def load_term_embeddings(
    path: str | os.PathLike, tables: Mapping[str, Sequence[str]], encoder: ClipEncoder | None = None
) -> dict[str, torch.Tensor]:
    """The file's embeddings (float16, CPU) for `tables`; TermEmbeddingsMismatch if they do not belong together.

    With `encoder`, the probe text is encoded and compared with the stored probe: a file computed with other CLIP
    weights is refused even if its tables and width match."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise TermEmbeddingsMismatch(f"{path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            if metadata.get("format") != FORMAT:
                raise TermEmbeddingsMismatch(f"{path}: unknown format {metadata.get('format')!r}")
            recorded = json.loads(metadata.get("tables", "{}"))
            for name, terms in tables.items():
                entry = recorded.get(name)
                if not entry or entry.get("sha256") != table_digest(terms):
                    raise TermEmbeddingsMismatch(f"{path}: the {name} table differs from the one shipped")
            tensors = {name: f.get_tensor(name) for name in [*list(tables), PROBE_KEY]}
    except TermEmbeddingsMismatch:
        raise
    except Exception as error:
        raise TermEmbeddingsMismatch(f"{path}: unreadable ({error})") from None
    for name, terms in tables.items():
        if tensors[name].shape[0] != len(terms):
            raise TermEmbeddingsMismatch(f"{path}: {name} has {tensors[name].shape[0]} rows for {len(terms)} terms")
    if encoder is not None:
        if tensors[PROBE_KEY].shape[-1] != encoder.dim:
            raise TermEmbeddingsMismatch(
                f"{path}: embeddings are {tensors[PROBE_KEY].shape[-1]} wide, the CLIP model gives {encoder.dim}"
            )
        probe = encoder.encode([PROBE_TEXT]).float().cpu()
        cosine = float(torch.nn.functional.cosine_similarity(probe, tensors[PROBE_KEY].float()).item())
        if cosine < PROBE_MIN_COSINE:
            raise TermEmbeddingsMismatch(
                f"{path}: computed with other CLIP weights (probe cosine {cosine:.3f} < {PROBE_MIN_COSINE})"
            )
    return tensors


# ---- staging ----


def precompute_term_embeddings(
    model_dir: str | os.PathLike,
    clip_model_id: str | None = None,
    *,
    output: str | os.PathLike | None = None,
    terms_dir: str | os.PathLike | None = None,
    clip_model_name: str | None = None,
    device: str | None = None,
    dtype: torch.dtype | None = None,
    batch_size: int = 256,
) -> Path:
    """Encode every term table with the interrogator's CLIP model and write `<model_dir>/term_embeddings.safetensors`.

    model_dir: the staged interrogator directory (CLIP in clip/, the captioner in caption/) or a CLIP directory.
    clip_model_id: the CLIP model (a directory, absolute or relative to model_dir, or a hub id); default as the
    endpoint resolves it. Runs on the GPU when there is one (about a minute for ViT-L/14 on an A10G), else on CPU
    in float32 (tens of minutes for ~111,000 terms). Returns the file written."""
    from transformers import AutoTokenizer, CLIPModel

    model_dir = Path(model_dir)
    fallback = model_id_fallback(str(model_dir), DEFAULT_CLIP_MODEL, model_type="clip")
    source = resolve_model_source(clip_model_id or "clip", [model_dir], fallback=fallback)
    torch_device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = dtype or (torch.float16 if torch_device.type == "cuda" else torch.float32)
    model = CLIPModel.from_pretrained(source)
    model = model.to(device=torch_device, dtype=dtype).eval()  # type: ignore[call-arg]  # transformers @wraps .to()
    tokenizer = AutoTokenizer.from_pretrained(source)
    encoder = ClipEncoder(model, tokenizer, batch_size=batch_size)
    tables = load_term_tables(terms_dir)
    embeddings = compute_term_embeddings(encoder, tables)
    name = display_name(clip_model_name, source)
    path = save_term_embeddings(Path(output) if output else model_dir / EMBEDDINGS_FILE, embeddings, tables, name)
    logger.info("wrote %s: %d terms x %d", path, sum(len(t) for t in tables.values()), encoder.dim)
    return path
