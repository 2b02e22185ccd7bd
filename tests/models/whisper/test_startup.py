"""Start-up behaviour of the container entrypoint: the `serve` argument, bad configuration, a model that cannot
load (the process must exit so SageMaker marks the endpoint failed, not answer 503 forever), a clean SIGTERM, and no
torch in the runtime."""

from __future__ import annotations

import os
import subprocess
import sys

import whisper_testkit as kit

PACKAGE_DIR = str(kit.PACKAGE_DIR)


def run_entrypoint(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("WHISPER_", "MAX_AUDIO_", "MODEL_"))}
    full_env.update(PYTHONPATH=PACKAGE_DIR, WHISPER_HOST="127.0.0.1", SAGEMAKER_BIND_TO_PORT="0", HF_HUB_OFFLINE="1")
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "whisper_server", *args],
        cwd=PACKAGE_DIR,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_only_the_serve_command_is_accepted():
    result = run_entrypoint("train")
    assert result.returncode == 2
    assert "serve" in result.stderr


def test_bad_configuration_stops_at_start_up():
    result = run_entrypoint("serve", MAX_AUDIO_SECONDS="ten")
    assert result.returncode == 2
    assert "MAX_AUDIO_SECONDS" in result.stderr


def test_missing_model_directory_exits_with_status_1(tmp_path):
    result = run_entrypoint("serve", MODEL_DIR=str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert "model load failed" in result.stderr and "does not exist" in result.stderr


def test_model_without_preprocessor_config_is_refused(tmp_path, tiny_model):
    model = tmp_path / "model"
    model.mkdir()
    for item in tiny_model.iterdir():
        if item.name != "preprocessor_config.json":
            (model / item.name).symlink_to(item)
    result = run_entrypoint("serve", MODEL_DIR=str(model))
    assert result.returncode == 1
    assert "128 Mel bins" in result.stderr and "preprocessor_config.json" in result.stderr


def test_default_settings_serve_and_stop_cleanly_on_sigterm(tmp_path, tiny_model):
    """The image's defaults (all cores, the temperature fallback schedule), then SageMaker's SIGTERM."""
    import requests

    server = kit.WhisperServer(tiny_model, tmp_path / "server.log").start()
    try:
        response = requests.post(
            server.url + "/invocations",
            data=kit.encode(kit.speechlike(6.0), "wav"),
            headers={"Content-Type": "audio/wav"},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["duration"] == 6.0 and isinstance(result["text"], str)
        assert all(0 <= s["start"] <= s["end"] <= 6.0 for s in result["segments"])
    finally:
        assert server.stop() == 0
    assert "shutting down" in server.log()


def test_runtime_does_not_import_torch(tiny_model):
    code = (
        "import sys\n"
        "from whisper_server.settings import Settings\n"
        "from whisper_server.engine import Engine\n"
        "import whisper_server.server\n"
        f"engine = Engine(Settings.from_env({{'MODEL_DIR': {str(tiny_model)!r}, 'WHISPER_CPU_THREADS': '1'}}))\n"
        "engine.load()\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers', 'tensorflow', 'jax'}))\n"
    )
    env = dict(os.environ, PYTHONPATH=PACKAGE_DIR, HF_HUB_OFFLINE="1")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
