"""The recording stand-in of vlp_client.VlpClient that the demo's tests run Session with: it returns the real
client's result types (vlp_client.AnalyzeResult, Job) and writes the files VlpClient.download writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image
from vlp_client import AnalyzeResult, Job


class Recorder:
    """Records each call; answers with the queued results (dicts, or exceptions to raise)."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []

    def _next(self) -> Any:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def analyze(self, image: Any, **kwargs: Any) -> AnalyzeResult:
        self.calls.append(("analyze", image, kwargs))
        return AnalyzeResult(self._next())

    def submit_job(self, image: Any, **kwargs: Any) -> Job:
        self.calls.append(("submit_job", image, kwargs))
        return Job("j-1", "queued")

    def wait(self, job_id: str, progress: Any = None, timeout: float = 900) -> Job:
        self.calls.append(("wait", job_id, {}))
        if progress:
            progress(Job(job_id, "running"))
        return Job.from_view({"job_id": job_id, **self._next()})

    def download(self, result: AnalyzeResult, out_dir: str | Path) -> list[Path]:
        """What VlpClient.download writes: result.json, overlay.png, mask-<i>.png, restyled.png (here: real small
        PNGs)."""
        self.calls.append(("download", result.request_id, {}))
        out = Path(out_dir)
        files = [out / "result.json"]
        files[0].write_text("{}")
        if result.overlay:
            Image.new("RGB", (64, 48), (200, 0, 0)).save(out / "overlay.png")
            files.append(out / "overlay.png")
        for mask in result.masks:
            image = Image.new("1", (64, 48), 0)
            image.paste(1, (8, 8, 40, 30))
            image.save(out / f"mask-{mask.index}.png")
            files.append(out / f"mask-{mask.index}.png")
        if result.restyle and result.restyle.restyled.url:
            picture = result.restyle.restyled
            Image.new("RGB", (picture.width, picture.height), (30, 60, 200)).save(out / "restyled.png")
            files.append(out / "restyled.png")
        return files
