"""Build a tiny random-weight Whisper model directory that faster-whisper loads, fully offline.

The directory has the same layout as a converted production model (e.g. Systran/faster-whisper-large-v3):

    model.bin                  CTranslate2 weights
    config.json                CTranslate2 Whisper config (alignment heads, language token ids, suppressed ids)
    vocabulary.json            the model vocabulary, in id order
    tokenizer.json             a Hugging Face `tokenizers` byte-level BPE tokenizer with Whisper's special tokens
    preprocessor_config.json   the log-Mel front end (128 bins for large-v3 class models, 80 before)

How it is made: a `transformers.WhisperForConditionalGeneration` with random weights and a tiny width
(d_model 64, 2+2 layers by default) is saved with an offline-built tokenizer and a generation config, then
converted by `ctranslate2.converters.TransformersConverter` from that local directory. Nothing is downloaded.

The vocabulary copies Whisper's id layout, because CTranslate2 and faster-whisper depend on it:
- ids 0..50256 are text tokens (the 256 byte-level symbols, then filler pseudo-words, so random weights decode to
  word-like garbage instead of bytes that are not valid UTF-8), the last one the empty string "" as in Whisper's
  multilingual vocabulary: CTranslate2 4.6+ recognises a multilingual model by that token;
- 50257 `<|endoftext|>`, 50258 `<|startoftranscript|>`, then one token per language (100 for large-v3 class,
  99 before), `<|translate|>`, `<|transcribe|>`, `<|startoflm|>`, `<|startofprev|>`, `<|nospeech|>`
  (`<|nocaptions|>` before v3), `<|notimestamps|>`, then 1501 timestamp tokens `<|0.00|>` .. `<|30.00|>`;
- faster-whisper and CTranslate2 hard-code parts of this layout (timestamps start right after <|notimestamps|>,
  text tokens are the ids below <|endoftext|>, older CTranslate2 releases call a model multilingual when its
  vocabulary has >= 51865 entries), hence the full-size id space even though the model is tiny (51866 x 64
  embeddings, about 15 MB).

Usage: `cached_tiny_whisper()` from a test or a benchmark (built once, then reused from .local/tiny-models/,
keyed by this file's content and the parameters: a build imports torch + transformers and takes ~30 s on 2 cores),
`build_tiny_whisper(out_dir)` for a fresh copy, or `.venv-models/bin/python tests/models/tiny_whisper.py OUT_DIR`.
Building needs torch + transformers + ctranslate2 (the .venv-models environment); the resulting directory needs only
faster-whisper to load.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CACHE = ROOT / ".local" / "tiny-models"  # git-ignored

# Whisper's language tokens, in Whisper's id order (openai/whisper tokenizer.LANGUAGES; "yue" added by large-v3).
WHISPER_LANGUAGES = [
    "en",
    "zh",
    "de",
    "es",
    "ru",
    "ko",
    "fr",
    "ja",
    "pt",
    "tr",
    "pl",
    "ca",
    "nl",
    "ar",
    "sv",
    "it",
    "id",
    "hi",
    "fi",
    "vi",
    "he",
    "uk",
    "el",
    "ms",
    "cs",
    "ro",
    "da",
    "hu",
    "ta",
    "no",
    "th",
    "ur",
    "hr",
    "bg",
    "lt",
    "la",
    "mi",
    "ml",
    "cy",
    "sk",
    "te",
    "fa",
    "lv",
    "bn",
    "sr",
    "az",
    "sl",
    "kn",
    "et",
    "mk",
    "br",
    "eu",
    "is",
    "hy",
    "ne",
    "mn",
    "bs",
    "kk",
    "sq",
    "sw",
    "gl",
    "mr",
    "pa",
    "si",
    "km",
    "sn",
    "yo",
    "so",
    "af",
    "oc",
    "ka",
    "be",
    "tg",
    "sd",
    "gu",
    "am",
    "yi",
    "lo",
    "uz",
    "fo",
    "ht",
    "ps",
    "tk",
    "nn",
    "mt",
    "sa",
    "lb",
    "my",
    "bo",
    "tl",
    "mg",
    "as",
    "tt",
    "haw",
    "ln",
    "ha",
    "ba",
    "jw",
    "su",
    "yue",
]

N_TEXT_TOKENS = 50257  # GPT-2 sized text vocabulary, as in every multilingual Whisper
N_TIMESTAMPS = 1501  # <|0.00|> .. <|30.00|> in steps of 0.02 s


def _filler_words(count: int):
    """Deterministic pseudo-words ("ba", "Ġkotu", ...): text tokens a random model can emit and decode."""
    consonants = "bdfghklmnprstvz"
    vowels = "aeiou"
    syllables = [c + v for c in consonants for v in vowels]
    produced = 0
    for n_syllables in itertools.count(1):
        for parts in itertools.product(syllables, repeat=n_syllables):
            word = "".join(parts)
            for token in ("Ġ" + word, word):  # "Ġ" is the byte-level form of a leading space
                yield token
                produced += 1
                if produced == count:
                    return


def special_tokens(multilingual: bool = True, v3: bool = True) -> list[str]:
    languages = WHISPER_LANGUAGES if v3 else WHISPER_LANGUAGES[:-1]
    tokens = ["<|endoftext|>", "<|startoftranscript|>"]
    if multilingual:
        tokens += [f"<|{code}|>" for code in languages]
    tokens += [
        "<|translate|>",
        "<|transcribe|>",
        "<|startoflm|>",
        "<|startofprev|>",
        "<|nospeech|>" if v3 else "<|nocaptions|>",
        "<|notimestamps|>",
    ]
    return tokens


def build_tokenizer(multilingual: bool = True, v3: bool = True):
    """A byte-level BPE `tokenizers.Tokenizer` with Whisper's id layout (see the module docstring)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers.convert_slow_tokenizer import bytes_to_unicode  # GPT-2's byte -> character map

    byte_symbols = [ch for _, ch in sorted(bytes_to_unicode().items())]
    text_tokens = byte_symbols + list(_filler_words(N_TEXT_TOKENS - len(byte_symbols) - 1))
    # The last text token is the empty string, as in Whisper's multilingual vocabulary: CTranslate2 (4.6+) uses its
    # presence to tell a multilingual model from an English-only one.
    text_tokens.append("")
    vocab = {token: i for i, token in enumerate(text_tokens)}
    assert len(vocab) == N_TEXT_TOKENS
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    specials = special_tokens(multilingual, v3)
    timestamps = ["<|%.2f|>" % (i * 0.02) for i in range(N_TIMESTAMPS)]
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in timestamps])
    assert tokenizer.token_to_id("<|endoftext|>") == N_TEXT_TOKENS
    assert tokenizer.get_vocab_size() == N_TEXT_TOKENS + len(specials) + N_TIMESTAMPS
    return tokenizer, specials


def build_tiny_whisper(
    out_dir: str | Path,
    *,
    d_model: int = 64,
    encoder_layers: int = 2,
    decoder_layers: int = 2,
    attention_heads: int = 2,
    multilingual: bool = True,
    v3: bool = True,
    seed: int = 0,
    quantization: str | None = None,
    eot_after: int | None = 10,
) -> Path:
    """Write a faster-whisper model directory with random weights to `out_dir` (replaced if present).

    `eot_after`: from this decoder position on (the prompt <|startoftranscript|><|lang|><|task|> takes 0-2),
    <|endoftext|> wins; see `_end_transcripts_early`. None leaves the decoder purely random.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is local; never reach for the hub
    import ctranslate2
    import torch
    import transformers
    from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration

    transformers.utils.logging.disable_progress_bar()

    out_dir = Path(out_dir)
    n_mels = 128 if v3 else 80
    tokenizer, specials = build_tokenizer(multilingual, v3)
    vocab_size = tokenizer.get_vocab_size()
    ids = {t: tokenizer.token_to_id(t) for t in specials}
    eot, sot, no_ts = ids["<|endoftext|>"], ids["<|startoftranscript|>"], ids["<|notimestamps|>"]
    lang_to_id = {t: i for t, i in ids.items() if t[2:-2] in WHISPER_LANGUAGES}

    # What the model config and the generation config both say about decoding: one start token, end-of-text for
    # padding, beginning and end, and no token suppressed but a leading space or end-of-text.
    decoding = {
        "decoder_start_token_id": sot,
        "pad_token_id": eot,
        "bos_token_id": eot,
        "eos_token_id": eot,
        "suppress_tokens": [],
        "begin_suppress_tokens": [220, eot],
    }
    torch.manual_seed(seed)
    config = WhisperConfig(
        vocab_size=vocab_size,
        num_mel_bins=n_mels,
        d_model=d_model,
        encoder_layers=encoder_layers,
        decoder_layers=decoder_layers,
        encoder_attention_heads=attention_heads,
        decoder_attention_heads=attention_heads,
        encoder_ffn_dim=4 * d_model,
        decoder_ffn_dim=4 * d_model,
        max_source_positions=1500,
        max_target_positions=448,
        **decoding,
        tie_word_embeddings=eot_after is None,
    )
    model = WhisperForConditionalGeneration(config).eval()
    if eot_after is not None:
        _end_transcripts_early(model, eot, eot_after, d_model)

    generation = GenerationConfig(
        **decoding,
        no_timestamps_token_id=no_ts,
        max_length=448,
        is_multilingual=multilingual,
        # Alignment heads for word timestamps: every head of the last decoder layer.
        alignment_heads=[[decoder_layers - 1, h] for h in range(attention_heads)],
        task_to_id={"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]},
        **({"lang_to_id": lang_to_id} if multilingual else {}),
    )

    preprocessor = {
        "feature_extractor_type": "WhisperFeatureExtractor",
        "feature_size": n_mels,
        "sampling_rate": 16000,
        "hop_length": 160,
        "chunk_length": 30,
        "n_fft": 400,
        "n_samples": 480000,
        "nb_max_frames": 3000,
        "padding_side": "right",
        "padding_value": 0.0,
        "return_attention_mask": False,
        "processor_class": "WhisperProcessor",
    }

    with tempfile.TemporaryDirectory(prefix="tiny-whisper-hf-") as tmp:
        hf_dir = Path(tmp)
        model.save_pretrained(hf_dir)
        generation.save_pretrained(hf_dir)
        tokenizer.save(str(hf_dir / "tokenizer.json"))
        (hf_dir / "tokenizer_config.json").write_text(
            json.dumps(
                {
                    "tokenizer_class": "PreTrainedTokenizerFast",
                    "model_max_length": 448,
                    "bos_token": "<|endoftext|>",
                    "eos_token": "<|endoftext|>",
                    "unk_token": "<|endoftext|>",
                    "pad_token": "<|endoftext|>",
                }
            )
        )
        (hf_dir / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        converter = ctranslate2.converters.TransformersConverter(
            str(hf_dir), copy_files=["tokenizer.json", "preprocessor_config.json"]
        )
        converter.convert(str(out_dir), quantization=quantization, force=True)
    return out_dir


def _end_transcripts_early(model, eot: int, position: int, d_model: int) -> None:
    """Make every decoded window end after a few tokens, the way a trained model closes its transcript.

    A purely random decoder rarely emits <|endoftext|>: each 30 s window runs to the 224-token limit, and since the
    window does not end on a timestamp faster-whisper re-decodes it from a small offset again and again (a 6 s clip
    took ~30 s on 2 cores, 10x that with word timestamps). So, in the (learned, untied) decoder position embeddings,
    position `position - 1` carries a large component along a direction v and every later position one along u;
    the output-projection rows of the timestamp tokens lean towards v and the row of <|endoftext|> is u. After the
    final layer norm a timestamp then wins at `position - 1` and <|endoftext|> after it: each window reads
    `<|t0|> ...random tokens... <|t1|> <|endoftext|>`, which faster-whisper treats as a finished window. Before that
    the decoder stays random. The weights stay random apart from these rows.
    """
    import torch

    generator = torch.Generator().manual_seed(1234)
    basis = torch.randn(d_model, 2, generator=generator)
    basis = basis - basis.mean(dim=0)  # layer norm removes the mean: keep the signal in what survives it
    basis, _ = torch.linalg.qr(basis)  # two orthonormal, zero-mean directions
    u, v = basis[:, 0], basis[:, 1]
    with torch.no_grad():
        positions = model.model.decoder.embed_positions.weight
        positions[position - 1] += 20.0 * v
        positions[position:] += 20.0 * u
        model.proj_out.weight[eot] = 3.0 * u
        timestamp_begin = model.config.vocab_size - N_TIMESTAMPS
        model.proj_out.weight[timestamp_begin:] += 3.0 * v


def cached_tiny_whisper(cache_dir: str | Path | None = None, **params) -> Path:
    """The tiny model directory for `params` (see build_tiny_whisper), built on first use and reused afterwards.

    The cache key covers this file and the parameters, so editing the builder rebuilds. The cache root is
    `cache_dir`, else $TINY_MODEL_CACHE, else .local/tiny-models/ in the repository. Safe for concurrent callers:
    each builds into a private directory and renames it into place.
    """
    from build_cache import cached_build

    root = Path(cache_dir or os.environ.get("TINY_MODEL_CACHE") or DEFAULT_CACHE)
    key = Path(__file__).read_bytes() + json.dumps(params, sort_keys=True).encode()
    return cached_build(root, "tiny-random-whisper", key, lambda directory: build_tiny_whisper(directory, **params))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--english-only", action="store_true", help="an English-only (.en style) model")
    parser.add_argument("--v2", action="store_true", help="80 Mel bins and 99 languages (large-v2 layout)")
    parser.add_argument("--d-model", type=int, default=64)
    args = parser.parse_args()
    path = build_tiny_whisper(args.out_dir, multilingual=not args.english_only, v3=not args.v2, d_model=args.d_model)
    print(path)


if __name__ == "__main__":
    main()
