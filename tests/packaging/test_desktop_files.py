"""Issue 6: the desktop entry, MIME types, AppStream metainfo and icons agree and validate.

The freedesktop validators run when they are installed (Debian: desktop-file-utils, appstream,
shared-mime-info) and skip otherwise; the consistency checks below them always run.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from paramedit import __version__
from paramedit.app_icon import ICON_SIZES, desktop_icon_path
from tests.packaging.png_checks import png_size

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"
DESKTOP = PACKAGING / "paramedit.desktop"
MIME = PACKAGING / "paramedit-mime.xml"
METAINFO = PACKAGING / "io.github.paramedit.Paramedit.metainfo.xml"
MIME_NS = {"m": "http://www.freedesktop.org/standards/shared-mime-info"}
EXPECTED_GLOBS = {
    "application/x-pytorch-checkpoint": {"*.pt", "*.pth", "*.ckpt"},
    "application/x-safetensors": {"*.safetensors"},
}


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def test_desktop_entry_passes_desktop_file_validate():
    done = _run([_tool("desktop-file-validate"), str(DESKTOP)])
    # Clean: no errors, warnings or hints (two main categories once listed the app twice in menus).
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout


def test_metainfo_passes_appstreamcli_validate():
    done = _run([_tool("appstreamcli"), "validate", "--no-net", str(METAINFO)])
    assert done.returncode == 0, done.stdout + done.stderr


def test_mime_types_compile_with_update_mime_database(tmp_path):
    (tmp_path / "packages").mkdir()
    shutil.copy(MIME, tmp_path / "packages" / MIME.name)
    done = _run([_tool("update-mime-database"), str(tmp_path)])
    assert done.returncode == 0, done.stderr
    globs = (tmp_path / "globs2").read_text()
    for mime_type, patterns in EXPECTED_GLOBS.items():
        for pattern in patterns:
            assert f"{mime_type}:{pattern}" in globs


def _desktop_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # keys are case-sensitive in desktop entries
    parser.read(DESKTOP, encoding="utf-8")
    return parser["Desktop Entry"]


def test_desktop_entry_opens_checkpoints_with_the_paramedit_icon():
    entry = _desktop_entry()
    assert entry["Exec"] == "paramedit %f"
    assert entry["Icon"] == "paramedit"
    assert set(entry["MimeType"].rstrip(";").split(";")) == set(EXPECTED_GLOBS)
    assert {"Science", "DataVisualization", "Qt"} <= set(entry["Categories"].rstrip(";").split(";"))


def test_mime_definitions_have_the_globs_and_no_magic():
    root = ET.parse(MIME).getroot()
    found = {t.get("type"): {g.get("pattern") for g in t.findall("m:glob", MIME_NS)}
             for t in root.findall("m:mime-type", MIME_NS)}
    assert found == EXPECTED_GLOBS
    assert not root.findall(".//m:magic", MIME_NS), "zip or pickle magic would claim files that are not checkpoints"


def test_metainfo_matches_the_desktop_entry_and_this_version():
    root = ET.parse(METAINFO).getroot()
    assert root.findtext("launchable") == DESKTOP.name
    assert {m.text for m in root.findall("provides/mediatype")} == set(EXPECTED_GLOBS)
    assert root.findtext("provides/binary") == "paramedit"
    versions = [r.get("version") for r in root.findall("releases/release")]
    assert versions and versions[0] == __version__, "add a <release> for the new version to the metainfo"
    assert root.find("content_rating") is not None
    assert root.findtext("screenshots/screenshot/image", "").endswith("docs/screenshot.png")


def test_icons_exist_at_every_size():
    svg = ET.parse(desktop_icon_path()).getroot()
    assert svg.tag.endswith("svg") and svg.get("viewBox") == "0 0 512 512"
    for size in ICON_SIZES:
        assert png_size(desktop_icon_path(size)) == (size, size)
    with pytest.raises(ValueError):
        desktop_icon_path(17)


def test_install_desktop_puts_entry_types_and_icons_under_the_prefix(tmp_path):
    command = tmp_path / "my apps" / "paramedit"
    done = subprocess.run(["bash", str(PACKAGING / "install_desktop.sh"), str(command)], capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "PREFIX": str(tmp_path / "prefix")})
    assert done.returncode == 0, done.stderr
    share = tmp_path / "prefix" / "share"
    entry = (share / "applications" / "paramedit.desktop").read_text()
    assert f'Exec="{command}" %f' in entry and f"TryExec={command}\n" in entry
    assert (share / "mime" / "packages" / "paramedit.xml").is_file()
    assert (share / "metainfo" / METAINFO.name).is_file()
    assert (share / "icons" / "hicolor" / "scalable" / "apps" / "paramedit.svg").is_file()
    for size in ICON_SIZES:
        assert png_size(share / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "paramedit.png") == (size, size)


def test_metainfo_screenshot_size_matches_docs_screenshot():
    shot = ROOT / "docs" / "screenshot.png"
    if not shot.is_file():
        pytest.skip("docs/screenshot.png is not there yet (paramedit --demo --screenshot docs/screenshot.png)")
    image = ET.parse(METAINFO).getroot().find("screenshots/screenshot/image")
    assert png_size(shot) == (int(image.get("width")), int(image.get("height")))
