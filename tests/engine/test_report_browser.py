"""The HTML report in a real browser (headless Chromium) at a 1280 px laptop width: nothing is
clipped (no table wider than its box, no page-wide horizontal scroll). The screenshot is written
for a person to look at; scripts/screenshot_report.sh takes one of reports/index.html."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.cli.main import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
PGPIS_V1 = ("fid_ptincv3_train", "lpips_alex_v0.1", "ssim_g12_dr", "ssim_g15_dr", "ssim_g15_dr_pad40", "ssim_w51",
            "ssim_w51_pad40", "psnr", "psnr_pad40")  # fmt: skip
MEASURE = """<script>
window.addEventListener('load', () => {
  const boxes = [...document.querySelectorAll('.scroll')].map(b => [b.scrollWidth, b.clientWidth]);
  document.title = JSON.stringify({page: document.documentElement.scrollWidth, view: window.innerWidth, boxes});
});
</script></body>"""


def chromium(*args: str) -> str:
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def write_metrics(folder: Path) -> None:
    for protocol in ("pgpis-v1", "cfld-256", "pidm"):
        for i, run in enumerate(("copy-source", "pose-warp", "cfld-released-checkpoint-long-name")):
            names = (
                PGPIS_V1
                if protocol == "pgpis-v1"
                else ("fid_incv3tv_train", "lpips_alex_v0.1", "ssim_w51", "psnr")
            )
            metrics = {
                n: 0.1 * (i + 1) + 0.01 * k for k, n in enumerate(names) if not n.startswith(("fid", "lpips"))
            }
            unavailable = {n: f"weight file for {n} is not at /root/.cache/torch/hub/checkpoints/x.pth. Run `pgpis fetch-weights pt_inception` when online" for n in names if n.startswith(("fid", "lpips"))}  # fmt: skip
            data = {
                "protocol": protocol, "method": {"name": "cfld" if i == 2 else run}, "num_images": 144,
                "num_expected": 144, "metrics": metrics, "unavailable": unavailable,
                "ci95": {n: [v - 0.01, v + 0.01] for n, v in metrics.items()},
                "protocol_settings": {"name": protocol, "eval_size": [256, 176], "notes": ["a long note " * 20]},
            }  # fmt: skip
            path = folder / protocol / f"{run}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(data))


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (apt-get install chromium)")
def test_report_fits_a_1280px_screen(tmp_path: Path) -> None:
    write_metrics(tmp_path / "metrics")
    page = tmp_path / "index.html"
    assert (
        main(
            [
                "report",
                "--metrics",
                str(tmp_path / "metrics"),
                "--out",
                str(tmp_path / "m.md"),
                "--html",
                str(page),
            ]
        )
        == 0
    )
    measured = tmp_path / "measured.html"
    measured.write_text(page.read_text().replace("</body>", MEASURE))
    dom = chromium("--window-size=1280,900", "--virtual-time-budget=2000", "--dump-dom", measured.as_uri())
    found = json.loads(re.search(r"<title>(.*?)</title>", dom).group(1).replace("&quot;", '"'))
    assert found["view"] == 1280 and found["page"] <= 1280, found
    # Every table fits its box: no column is cut off or hidden behind a scroll bar.
    assert found["boxes"] and all(scroll <= client for scroll, client in found["boxes"]), found
    shot = tmp_path / "report-1280.png"
    chromium("--window-size=1280,2400", f"--screenshot={shot}", page.as_uri())
    assert shot.stat().st_size > 10_000
