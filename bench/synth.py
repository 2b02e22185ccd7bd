"""Synthesize every environment cold (a fresh `python app.py`, cdk-nag included, as `cdk synth` runs it) and print
per-stack template sizes and the wall time. Last line: synth_seconds=<float>. Target: under 30 s on 2 cores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    with tempfile.TemporaryDirectory() as outdir:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(CDK_OUTDIR=outdir, AWS_EC2_METADATA_DISABLED="true")
        env["PATH"] = os.pathsep.join([str(ROOT / "node_modules" / ".bin"), env.get("PATH", "")])
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if result.returncode != 0:
            sys.exit(f"synth failed:\n{result.stderr[-4000:]}")
        print(f"{'stack':<22} {'resources':>9} {'template KiB':>13}")
        total = 0
        for template in sorted(Path(outdir).glob("assembly-*/*.template.json")):
            size = template.stat().st_size
            total += size
            resources = len(json.loads(template.read_text())["Resources"])
            name = template.parent.name.removeprefix("assembly-") + "/" + template.stem.split(".")[0]
            print(f"{name:<22} {resources:>9} {size / 1024:>13.1f}")
        print(f"{'total':<22} {'':>9} {total / 1024:>13.1f}")
    print(f"synth_seconds={seconds:.2f}")


if __name__ == "__main__":
    main()
