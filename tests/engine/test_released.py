"""``released``: published outputs (folder or zip, strips, padded crops) become a run in our layout."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from bench.cli.main import main
from bench.data.deepfashion import DeepFashionDataset, pair_id

REPO = Path(__file__).resolve().parents[2]
PRESETS = REPO / "methods" / "released" / "configs"


def _pairs(root: Path) -> list[tuple[str, str]]:
    return DeepFashionDataset(root).pairs


def _generated(pid_index: int, size: tuple[int, int]) -> np.ndarray:
    """A distinct, textured "generated" image per pair (so a wrong pair or a shifted panel shows)."""
    rng = np.random.default_rng(pid_index)
    return rng.integers(0, 256, (*size, 3), dtype=np.uint8)


def _encode(array: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def _decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


def _generate(root: Path, release: Path, config: Path, out: Path, size: str = "256x176") -> int:
    return main(["generate", "--method", "released", "--checkpoint", str(release), "--config", str(config),
                 "--dataset", str(root), "--out", str(out), "--size", size, "--no-progress"])  # fmt: skip


def _written(out: Path, pid: str) -> np.ndarray:
    return np.asarray(Image.open(out / f"{pid}.png").convert("RGB"))


def test_adgan_strips_in_a_zip_give_their_last_panel(tiny_root: Path, tmp_path: Path) -> None:
    """The ADGAN preset: JPEG strips of five 176-px panels named <src.jpg>___<tgt.jpg>_vis.jpg, here in
    a zip with a subfolder; each output is exactly the decoded last panel."""
    release = tmp_path / "ADGAN.zip"
    expected = {}
    with zipfile.ZipFile(release, "w") as z:
        for i, (src, tgt) in enumerate(_pairs(tiny_root)):
            strip = np.concatenate([np.full((256, 176, 3), 40 * k, np.uint8) for k in range(4)]
                                   + [_generated(i, (256, 176))], axis=1)  # fmt: skip
            data = _encode(strip, "JPEG")
            z.writestr(f"ADGAN/test/{src}___{tgt}_vis.jpg", data)
            expected[pair_id(src, tgt)] = _decode(data)[:, 4 * 176 :]
    out = tmp_path / "adgan"
    assert _generate(tiny_root, release, PRESETS / "adgan.yaml", out) == 0
    assert len(list(out.glob("*.png"))) == len(expected) == 24
    for pid, want in expected.items():
        np.testing.assert_array_equal(_written(out, pid), want, err_msg=pid)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["method"]["release"] == str(release) and "unavailable" not in manifest


def test_pise_padding_is_cropped_to_the_256x176_frame(tiny_root: Path, tmp_path: Path) -> None:
    release = tmp_path / "pise"
    release.mkdir()
    expected = {}
    for i, (src, tgt) in enumerate(_pairs(tiny_root)):
        padded = np.full((256, 256, 3), 255, np.uint8)
        padded[:, 40:216] = _generated(i, (256, 176))
        data = _encode(padded, "JPEG")
        (release / f"{Path(src).stem}_2_{Path(tgt).stem}_vis.jpg").write_bytes(data)
        expected[pair_id(src, tgt)] = _decode(data)[:, 40:216]
    out = tmp_path / "out"
    assert _generate(tiny_root, release, PRESETS / "pise.yaml", out) == 0
    for pid, want in expected.items():
        np.testing.assert_array_equal(_written(out, pid), want)


def test_pidm_keeps_its_native_size_for_the_pidm_protocol(tiny_root: Path, tmp_path: Path) -> None:
    release = tmp_path / "PIDM"
    release.mkdir()
    for i, (src, tgt) in enumerate(_pairs(tiny_root)):
        data = _encode(_generated(i, (256, 256)), "PNG")
        (release / f"{Path(src).stem}_2_{Path(tgt).stem}_vis.png").write_bytes(data)
    out = tmp_path / "out"
    assert _generate(tiny_root, release, PRESETS / "pidm.yaml", out, size="256x256") == 0
    src, tgt = _pairs(tiny_root)[5]
    np.testing.assert_array_equal(_written(out, pair_id(src, tgt)), _generated(5, (256, 256)))


def test_pairs_the_release_lacks_are_listed_not_invented(tiny_root: Path, tmp_path: Path, capsys) -> None:
    release = tmp_path / "partial"
    release.mkdir()
    pairs = _pairs(tiny_root)
    for i, (src, tgt) in enumerate(pairs[3:], start=3):
        (release / f"{pair_id(src, tgt)}.png").write_bytes(_encode(_generated(i, (256, 176)), "PNG"))
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"patterns": ["{pid}.png"]}))
    out = tmp_path / "out"
    assert _generate(tiny_root, release, config, out) == 0
    assert "3 pair(s) the method cannot produce are left out" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    lacking = [pair_id(*p) for p in pairs[:3]]
    assert sorted(manifest["unavailable"]) == sorted(lacking)
    assert f"looked for {lacking[0]}.png" in manifest["unavailable"][lacking[0]]
    assert len(list(out.glob("*.png"))) == 21
    # Scoring counts them: refused as incomplete unless --allow-missing.
    code = main(["evaluate", "--protocol", "pgpis-v1", "--images", str(out), "--dataset", str(tiny_root),
                 "--out", str(tmp_path / "m.json"), "--no-progress"])  # fmt: skip
    assert code == 2 and "3 of 24 generated images are missing" in capsys.readouterr().err


def test_release_errors_name_the_file_and_the_fix(tiny_root: Path, tmp_path: Path, capsys) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"patterns": ["{pid}.png"]}))
    out = tmp_path / "out"
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    (wrong / "something_else.png").write_bytes(_encode(_generated(0, (256, 176)), "PNG"))
    assert _generate(tiny_root, wrong, config, out) == 2
    assert "none of the 24 pairs has a file here" in capsys.readouterr().err and not out.exists()

    assert _generate(tiny_root, tmp_path / "absent.zip", config, out) == 2
    assert "released outputs not found" in capsys.readouterr().err

    twice = tmp_path / "twice"
    src, tgt = _pairs(tiny_root)[0]
    for sub in ("a", "b"):
        (twice / sub).mkdir(parents=True)
        (twice / sub / f"{pair_id(src, tgt)}.png").write_bytes(_encode(_generated(0, (256, 176)), "PNG"))
    assert _generate(tiny_root, twice, config, out) == 2
    assert "is there 2 times" in capsys.readouterr().err

    strips = tmp_path / "strips"
    strips.mkdir()
    for i, (s, t) in enumerate(_pairs(tiny_root)):
        (strips / f"{pair_id(s, t)}.png").write_bytes(_encode(_generated(i, (256, 170)), "PNG"))
    config.write_text(yaml.safe_dump({"patterns": ["{pid}.png"], "panels": [4, 3]}))
    assert _generate(tiny_root, strips, config, out) == 2
    assert "width 170 does not split into 4 equal panels" in capsys.readouterr().err

    config.write_text(yaml.safe_dump({"pattern": "{pid}.png"}))
    assert _generate(tiny_root, strips, config, out) == 2
    assert "unknown config key(s) pattern" in capsys.readouterr().err
    assert main(["generate", "--method", "released", "--dataset", str(tiny_root), "--out", str(out)]) == 2
    assert "needs the release: --checkpoint" in capsys.readouterr().err


def test_every_preset_is_a_valid_config(tmp_path: Path) -> None:
    from methods.released.method import Released

    (tmp_path / "x.png").write_bytes(_encode(_generated(0, (8, 8)), "PNG"))
    names = sorted(p.stem for p in PRESETS.glob("*.yaml"))
    assert names == ["adgan", "cfld", "dptn", "gfla", "nted", "patn", "pidm", "pise"]
    for path in PRESETS.glob("*.yaml"):
        method = Released(yaml.safe_load(path.read_text()), str(tmp_path))
        assert method.names("fashionA_1front.jpg", "fashionA_2side.jpg"), path
