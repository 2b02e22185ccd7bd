"""Request options: from SageMaker's custom-attributes header (raw audio bodies) or from the JSON body.

Both forms carry the same options and go through the same validation (docs/whisper-container.md):
`language`, `task`, `vad_filter`, `word_timestamps`, `beam_size`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ApiError

OPTION_NAMES = ("language", "task", "vad_filter", "word_timestamps", "beam_size")
TASKS = ("transcribe", "translate")
BEAM_SIZE_RANGE = (1, 10)
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


@dataclass(frozen=True)
class Options:
    language: str | None = None  # None: detect
    task: str = "transcribe"
    vad_filter: bool = True
    word_timestamps: bool = False
    beam_size: int = 5


def parse_custom_attributes(header: str | None) -> dict[str, str]:
    """`key=value;key=value` -> dict. Keys are case-insensitive ('-' reads as '_'); empty items are skipped.

    Items that name none of our options are ignored: the header is free-form and other tools (tracing, A/B tags)
    use it too. An option named without a value is refused, so a typo'd `word_timestamps` does not pass silently.
    """
    result: dict[str, str] = {}
    if not header:
        return result
    for item in header.split(";"):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip().lower().replace("-", "_")
        if key not in OPTION_NAMES:
            continue
        if not sep:
            raise ApiError("INVALID_OPTION", f"custom attribute {key!r} needs a value ({key}=...)")
        result[key] = value.strip()
    return result


def build_options(raw: Mapping[str, Any], *, languages: Iterable[str], multilingual: bool) -> Options:
    """Validate raw option values (strings from the header, JSON values from the body) into Options."""
    languages = set(languages)
    values: dict[str, Any] = {}
    if raw.get("language") not in (None, "", "auto"):
        values["language"] = _language(raw["language"], languages, multilingual)
    if raw.get("task") is not None:
        task = raw["task"]
        if not isinstance(task, str) or task.strip().lower() not in TASKS:
            raise ApiError("INVALID_OPTION", f"task must be one of {', '.join(TASKS)}, not {task!r}")
        task = task.strip().lower()
        if task == "translate" and not multilingual:
            raise ApiError("INVALID_OPTION", "task 'translate' needs a multilingual model; this one is English-only")
        values["task"] = task
    for name in ("vad_filter", "word_timestamps"):
        if raw.get(name) is not None:
            values[name] = _bool(name, raw[name])
    if raw.get("beam_size") is not None:
        values["beam_size"] = _beam_size(raw["beam_size"])
    return Options(**values)


def _language(value: Any, languages: set[str], multilingual: bool) -> str:
    if not isinstance(value, str):
        raise ApiError("INVALID_OPTION", f"language must be a language code such as 'en', not {value!r}")
    # Accept BCP-47 tags ("en-US", "pt_BR") by their primary subtag.
    code = value.strip().lower().replace("_", "-").split("-")[0]
    if code not in languages:
        if not multilingual:
            raise ApiError("INVALID_OPTION", f"language {value!r} is not supported: this model is English-only ('en')")
        raise ApiError(
            "INVALID_OPTION",
            f"language {value!r} is not a Whisper language code (ISO 639-1 such as 'en', 'de', 'zh'; 'haw', 'yue'), "
            "or leave it out to detect the language",
        )
    return code


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise ApiError("INVALID_OPTION", f"{name} must be true or false, not {value!r}")


def _beam_size(value: Any) -> int:
    low, high = BEAM_SIZE_RANGE
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is None or not low <= number <= high:
        raise ApiError("INVALID_OPTION", f"beam_size must be an integer from {low} to {high}, not {value!r}")
    return number
