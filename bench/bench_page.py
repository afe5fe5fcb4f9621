"""The web page under real Lighthouse (mobile profile), served by a real `enerbox sim stack`.

Lighthouse 12 runs through `npx --yes lighthouse@12` with its npm cache under
~/.cache/enerbox-lighthouse (never in the repo), against /usr/bin/chromium headless. Prints
the performance, accessibility and best-practices scores and the cumulative layout shift.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.net import ROOT, free_port

CHROME = Path("/usr/bin/chromium")
CACHE = Path.home() / ".cache" / "enerbox-lighthouse"
SETTLE_S = 20.0  # the devices' first states before Lighthouse loads the page
# Lighthouse's timing metrics (ms), printed next to the scores.
METRICS = ("first-contentful-paint", "largest-contentful-paint", "total-blocking-time",
           "speed-index")
REPORT = CACHE / "page-report.json"  # kept: its audits say why a score is low
HEALTH_TIMEOUT_S = 60.0  # a stack on a loaded 2-core Pi/CI box is up well within this


def lighthouse(url: str, out: Path) -> dict[str, Any]:
    """One Lighthouse run (mobile profile, its default), the JSON report."""
    env = {**os.environ, "npm_config_cache": str(CACHE / "npm"), "CHROME_PATH": str(CHROME)}
    subprocess.run(
        ["npx", "--yes", "lighthouse@12", url, "--quiet", "--output=json",
         f"--output-path={out}", "--only-categories=performance,accessibility,best-practices",
         "--chrome-flags=--headless=new --no-sandbox --disable-gpu"],
        check=True, env=env, cwd=CACHE, timeout=600)
    report: dict[str, Any] = json.loads(out.read_text("utf-8"))
    error = report.get("runtimeError")
    if error:  # e.g. an interstitial: the scores would be those of Chrome's error page
        raise RuntimeError(f"Lighthouse could not load {url}: {error.get('code')}: "
                           f"{error.get('message')}")
    return report


class StackDownError(RuntimeError):
    """The stack's api never answered: no figure is better than a score of an error page."""


def wait_healthy(url: str, stack: subprocess.Popen[bytes], run_dir: Path,
                 timeout: float = HEALTH_TIMEOUT_S) -> None:
    """Until GET /api/health answers 200; StackDownError (with the logs' tails) otherwise."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if stack.poll() is not None:
            last = f"the stack exited with code {stack.returncode}"
            break
        try:
            reply = httpx.get(f"{url}api/health", timeout=2)
            if reply.status_code == 200:
                return
            last = f"HTTP {reply.status_code}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.5)
    tails = "".join(f"\n--- {log.name}\n" + "\n".join(log.read_text("utf-8", "replace")
                                                        .splitlines()[-10:])
                    for log in sorted(run_dir.glob("*.log")))
    raise StackDownError(f"the api at {url} never answered /api/health ({last}){tails}")


def measure() -> dict[str, float]:
    """Scores (0-100) and CLS of the page of a freshly started simulated stack."""
    CACHE.mkdir(parents=True, exist_ok=True)
    port, api_port = free_port(), free_port()
    env = {**os.environ, "ENERBOX_API__PORT": str(api_port)}
    with tempfile.TemporaryDirectory() as run_dir:
        stack = subprocess.Popen(
            [sys.executable, "-m", "services.app.cli", "sim", "stack", "--port", str(port),
             "--run-dir", run_dir], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{api_port}/"
        try:
            wait_healthy(url, stack, Path(run_dir))
            time.sleep(SETTLE_S)  # a page with live data, as a user meets it
            report = lighthouse(url, REPORT)
        finally:
            stack.send_signal(signal.SIGINT)
            stack.wait(30)
    cats = report["categories"]
    return {"performance": cats["performance"]["score"] * 100,
            "accessibility": cats["accessibility"]["score"] * 100,
            "best_practices": cats["best-practices"]["score"] * 100,
            "cls": report["audits"]["cumulative-layout-shift"]["numericValue"],
            **{key: report["audits"][key]["numericValue"] for key in METRICS}}


def main() -> None:
    """Print the figures."""
    if not CHROME.exists() or shutil.which("npx") is None:
        print("page (Lighthouse): skipped, needs /usr/bin/chromium and npx")
        return
    got = measure()
    print("page under Lighthouse 12, mobile profile:")
    print(f"  performance {got['performance']:.0f}  accessibility {got['accessibility']:.0f}  "
          f"best practices {got['best_practices']:.0f}  CLS {got['cls']:.3f}  "
          "(aim: performance >= 90, CLS < 0.1)")
    print("  " + "  ".join(f"{key} {got[key]:.0f} ms" for key in METRICS))
    print(f"  report: {REPORT}")


if __name__ == "__main__":
    main()
