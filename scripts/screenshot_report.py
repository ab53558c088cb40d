"""Screenshot a round's report.html with headless Chromium, to check that it renders.

Usage: python scripts/screenshot_report.py REPORT.html OUT.png [--width 1200] [--height 2400]

Runs Chromium with a fresh throwaway profile, no network features, no GPU and no sandbox (so it also works
as root in a container), and writes a PNG of the page's first WIDTH x HEIGHT pixels. Needs `chromium`
(Debian: `apt-get install chromium`; `scripts/setup.sh` installs it when run as root). Exit status 0 and the
PNG on success; a message naming what is missing otherwise. It does not judge the picture.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
TIMEOUT_S = 120


def find_chromium() -> str | None:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(report: Path, out: Path, width: int = 1200, height: int = 2400) -> None:
    browser = find_chromium()
    if browser is None:
        raise RuntimeError("no Chromium found on PATH; install it with: apt-get install chromium")
    if not report.is_file():
        raise FileNotFoundError(f"no report at {report}")
    out = out.resolve()
    out.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="flywheel-chromium-") as profile:
        command = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--screenshot={out}",
            f"--window-size={width},{height}",
            report.resolve().as_uri(),
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
    if result.returncode != 0 or not out.is_file():
        raise RuntimeError(f"{browser} exited with {result.returncode} and wrote no {out}:\n{result.stderr[-3000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("report", type=Path, help="a report.html")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--width", type=int, default=1200)
    parser.add_argument("--height", type=int, default=2400)
    args = parser.parse_args(argv)
    try:
        screenshot(args.report, args.out, args.width, args.height)
    except (RuntimeError, FileNotFoundError, subprocess.TimeoutExpired) as error:
        print(f"screenshot_report: error: {error}", file=sys.stderr)
        return 1
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
