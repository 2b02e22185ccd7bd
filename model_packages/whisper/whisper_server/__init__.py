"""Whisper speech recognition behind the SageMaker inference container contract.

`GET /ping` and `POST /invocations` on port 8080 (docs/whisper-container.md). faster-whisper (CTranslate2) runs the
model; PyAV decodes the audio; the HTTP layer is the standard library's ThreadingHTTPServer. No torch at runtime.
"""

__version__ = "1.0.0"
