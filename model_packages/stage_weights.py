"""Stage model weights into an environment's artifacts bucket, so endpoints never depend on the Hugging Face Hub.

    make stage-weights ENV=dev                      # every enabled model whose weights are an S3 prefix
    make stage-weights ENV=prod ROLE=grounded_sam   # one role (comma-separated for several)
    .venv-models/bin/python -m model_packages.stage_weights --env dev --roles vlm,llm --dry-run

Needs internet (the Hub) and AWS credentials. Gated models (Llama-2) need HF_TOKEN in the environment.
Each role's prefix gets the layout its container expects (see each package's serving.properties):
one snapshot at the prefix root, or one per component subfolder. The interrogator's term-table embeddings are
computed here, once, and stored with its weights.

A DJL role with `network_isolation: true` also gets its bundle (ops/bundles.py): the package with its vendored
dependencies (`make packages` first) and a server-side copy of its weights under bundles/<role>/<package hash>/.
`--missing-only` skips every weights folder that already holds objects (what `make deploy STAGE_WEIGHTS=yes` uses).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stacks import constants as c  # noqa: E402 (after the sys.path set-up)
from stacks.config import EnvironmentConfig, load_config  # noqa: E402 (after the sys.path set-up)

log = logging.getLogger("stage_weights")

# Role -> {subfolder under the prefix ("" = the root): hub id}; None means the role's configured model_id.
COMPONENTS: dict[str, dict[str, str | None]] = {
    c.MODEL_VLM: {"": None},
    c.MODEL_LLM: {"": None},
    c.MODEL_ASR: {"": None},  # a CTranslate2 conversion, e.g. Systran/faster-whisper-large-v3 (see ASR_REPOS)
    c.MODEL_CLIP_TAGGING: {"": None},
    c.MODEL_INTENT_KEYWORDS: {"nli": None, "keywords": "sentence-transformers/all-MiniLM-L6-v2"},
    c.MODEL_GROUNDED_SAM: {"grounding_dino": None, "sam": "facebook/sam-vit-huge"},
    c.MODEL_CLIP_INTERROGATOR: {"clip": None, "caption": "Salesforce/blip-image-captioning-large"},
    c.MODEL_RESTYLE: {"": None},  # the diffusers pipeline folder (model_index.json + one folder per component)
}
# faster-whisper size names -> the CTranslate2 repositories faster-whisper itself downloads
ASR_REPOS = {
    "large-v3": "Systran/faster-whisper-large-v3",
    "large-v2": "Systran/faster-whisper-large-v2",
    "medium": "Systran/faster-whisper-medium",
    "small": "Systran/faster-whisper-small",
}
# Only what serving needs: weights as safetensors (or CTranslate2's model.bin), configs and tokenizers.
ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "tokenizer*", "*.py", "model.bin", "vocabulary*"]
# SDXL's hub repository also holds single-file checkpoints, fp32 weights, ONNX and a LoRA (over 40 GB): the
# restyle package loads only the pipeline's components in their fp16 variant (serving.properties: option.variant).
SDXL_COMPONENTS = ("text_encoder", "text_encoder_2", "unet", "vae")
ROLE_ALLOW_PATTERNS: dict[str, list[str]] = {
    c.MODEL_RESTYLE: [
        "model_index.json",
        "scheduler/*.json",
        "tokenizer/*",
        "tokenizer_2/*",
        *(f"{component}/config.json" for component in SDXL_COMPONENTS),
        *(f"{component}/*.fp16.safetensors" for component in SDXL_COMPONENTS),
    ],
}


@dataclass(frozen=True)
class Upload:
    role: str
    hub_id: str
    key_prefix: str  # in the artifacts bucket
    allow_patterns: tuple[str, ...] | None = None  # None: ALLOW_PATTERNS


def plan(config: EnvironmentConfig, roles: Iterable[str] | None = None) -> list[Upload]:
    """What to stage: one Upload per component of every enabled model whose weights live in S3."""
    wanted = set(roles) if roles else None
    uploads = []
    for role, model in config.models.enabled():
        if wanted is not None and role not in wanted:
            continue
        if model.weights is None or model.weights.s3_prefix is None:
            log.info(
                "%s: weights come from the hub (%s), nothing to stage", role, model.weights and model.weights.hub_id
            )
            continue
        for subfolder, hub_id in COMPONENTS[role].items():
            source = hub_id or (
                ASR_REPOS.get(model.model_id, model.model_id) if role == c.MODEL_ASR else model.model_id
            )
            prefix = model.weights.s3_prefix + (f"{subfolder}/" if subfolder else "")
            patterns = ROLE_ALLOW_PATTERNS.get(role)
            uploads.append(
                Upload(
                    role=role, hub_id=source, key_prefix=prefix, allow_patterns=tuple(patterns) if patterns else None
                )
            )
    if wanted:
        unknown = wanted - {role for role, _ in config.models.items()}
        if unknown:
            raise SystemExit(f"unknown roles: {', '.join(sorted(unknown))}")
    return uploads


def hub_download(hub_id: str, target: Path, allow_patterns: Iterable[str] | None = None) -> Path:
    from huggingface_hub import snapshot_download

    patterns = list(allow_patterns) if allow_patterns is not None else ALLOW_PATTERNS
    return Path(snapshot_download(hub_id, local_dir=target, allow_patterns=patterns, token=os.environ.get("HF_TOKEN")))


def upload_tree(s3, bucket: str, local: Path, key_prefix: str) -> int:
    """Upload every file under `local` to s3://bucket/key_prefix..., returning the count."""
    count = 0
    for path in sorted(p for p in local.rglob("*") if p.is_file() and ".cache" not in p.parts):
        s3.upload_file(str(path), bucket, key_prefix + path.relative_to(local).as_posix())
        count += 1
    return count


def precompute_interrogator_embeddings(model_dir: Path, clip_model_name: str) -> Path:
    """The interrogator's term tables, embedded once by its CLIP model, stored beside the weights."""
    for folder in ("shared", "clip_interrogator"):  # the module and the shared one it imports, as in the package
        sys.path.insert(0, str(ROOT / "model_packages" / folder))
    from clip_interrogator_terms import precompute_term_embeddings

    return precompute_term_embeddings(str(model_dir), clip_model_name=clip_model_name)


def stage(
    config: EnvironmentConfig,
    *,
    s3,
    bucket: str,
    roles: Iterable[str] | None = None,
    download: Callable[..., Path] = hub_download,
    embed_terms: Callable[[Path, str], Path] = precompute_interrogator_embeddings,
    dry_run: bool = False,
    missing_only: bool = False,
) -> list[tuple[Upload, int]]:
    from ops.bundles import stage_bundles

    done = []
    skipped: set[str] = set()  # roles with a weights folder left as it was (missing_only)
    uploads = plan(config, roles)
    with tempfile.TemporaryDirectory(prefix="vlp-weights-") as scratch:
        for upload in uploads:
            log.info("%s: %s -> s3://%s/%s", upload.role, upload.hub_id, bucket, upload.key_prefix)
            if dry_run:
                done.append((upload, 0))
                continue
            if missing_only and s3.list_objects_v2(Bucket=bucket, Prefix=upload.key_prefix, MaxKeys=1).get("KeyCount"):
                log.info("%s: s3://%s/%s already holds objects, skipped", upload.role, bucket, upload.key_prefix)
                skipped.add(upload.role)
                continue
            local = Path(scratch) / upload.key_prefix
            if upload.allow_patterns is None:
                download(upload.hub_id, local)
            else:  # a role that needs only part of its repository
                download(upload.hub_id, local, upload.allow_patterns)
            done.append((upload, upload_tree(s3, bucket, local, upload.key_prefix)))
        interrogator = c.MODEL_CLIP_INTERROGATOR
        if not dry_run and interrogator not in skipped and any(u.role == interrogator for u in uploads):
            model = getattr(config.models, c.MODEL_CLIP_INTERROGATOR)
            path = embed_terms(Path(scratch) / model.weights.s3_prefix, model.model_id)
            s3.upload_file(str(path), bucket, model.weights.s3_prefix + path.name)
            log.info("clip_interrogator: term embeddings uploaded as %s", path.name)
    stage_bundles(config, s3=s3, bucket=bucket, roles=roles, dry_run=dry_run)  # isolated DJL roles, after weights
    return done


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", required=True, help="environment name (config/<env>.yaml)")
    parser.add_argument("--roles", help="comma-separated roles (default: every enabled model)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, download and upload nothing")
    parser.add_argument("--missing-only", action="store_true", help="skip weights folders that hold objects")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = load_config(ROOT / "config" / f"{args.env}.yaml")
    import boto3

    session = boto3.Session(region_name=config.region)
    account = config.account or session.client("sts").get_caller_identity()["Account"]
    bucket = config.bucket_name("artifacts", account)
    roles = args.roles.split(",") if args.roles else None
    stage(
        config,
        s3=session.client("s3"),
        bucket=bucket,
        roles=roles,
        dry_run=args.dry_run,
        missing_only=args.missing_only,
    )


if __name__ == "__main__":
    main()
