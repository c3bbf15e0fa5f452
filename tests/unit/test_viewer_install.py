"""The OHIF Viewer's install (pin, integrity, unpack, move to /viewer/) and its configuration.

The tarballs here are small ones shaped like ``@ohif/app``'s (``package/dist/`` with an
``index.html`` naming its files from ``/`` and a webpack runtime); the real package is
installed by tests/e2e/test_console.py.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from pacsflow.config import Settings
from pacsflow.viewer import PIN, ViewerPin, installed
from pacsflow.viewer.config import app_config
from pacsflow.viewer.package import InstallError, install, sri_sha512
from pacsflow.viewer.rebase import rebase

BROWSER = Path(__file__).resolve().parents[1] / "browser"
VENDOR = Path(__file__).resolve().parents[2] / "services/web/static/vendor/uplot-1.6.32"
INDEX = (
    b'<!doctype html><html><head><link href="/app.css" rel="stylesheet">'
    b'<script>window.PUBLIC_URL="/"</script></head>'
    b'<body><script src="/app.bundle.0123456789abcdef.js"></script></body></html>'
)
BUNDLE = b'(()=>{__webpack_require__.p = "/";})();' + b"x" * 8000
STYLE = b"@font-face{src:url(/fonts/a.woff2)}body{background:url(//cdn/x.png)}"


def tarball(path: Path, files: dict[str, bytes]) -> ViewerPin:
    """A gzipped tarball of ``files``; a pin of it (its real integrity)."""
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            member = tarfile.TarInfo(name)
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return ViewerPin("@ohif/app", "0.0.1", sri_sha512(hashlib.sha512(path.read_bytes()).digest()))


def ohif_like(path: Path) -> ViewerPin:
    return tarball(
        path,
        {
            "package/package.json": b"{}",
            "package/dist/index.html": INDEX,
            "package/dist/app.bundle.0123456789abcdef.js": BUNDLE,
            "package/dist/app.css": STYLE,
        },
    )


def test_the_pin_is_the_one_the_browser_tests_use() -> None:
    pinned = json.loads((BROWSER / "package.json").read_text())["ohif"]
    assert (PIN.package, PIN.version, PIN.integrity) == (
        pinned["package"],
        pinned["version"],
        pinned["integrity"],
    )


def test_install_moves_the_viewer_under_viewer_and_is_idempotent(tmp_path: Path) -> None:
    pin = ohif_like(tmp_path / "app.tgz")
    root = tmp_path / "data" / "viewer"
    viewer = install(root, pin, tarball=tmp_path / "app.tgz")
    assert viewer == installed(root)
    assert (viewer.version, viewer.integrity) == (pin.version, pin.integrity)
    index = (root / "index.html").read_bytes()
    assert b'href="/viewer/app.css"' in index
    assert b'src="/viewer/app.bundle.0123456789abcdef.js"' in index
    assert b'window.PUBLIC_URL="/viewer/"' in index
    bundle = (root / "app.bundle.0123456789abcdef.js").read_bytes()
    assert b'__webpack_require__.p = "/viewer/";' in bundle
    assert (root / "app.bundle.0123456789abcdef.js.gz").is_file()  # large enough to pack
    assert (root / "app.css").read_bytes() == (
        b"@font-face{src:url(/viewer/fonts/a.woff2)}body{background:url(//cdn/x.png)}"
    )
    said: list[str] = []
    again = install(root, pin, tarball=tmp_path / "nowhere.tgz", say=said.append)
    assert again == viewer and "already installed" in said[0]


def test_a_tarball_of_another_integrity_is_refused_and_nothing_is_installed(
    tmp_path: Path,
) -> None:
    ohif_like(tmp_path / "app.tgz")
    pin = ViewerPin("@ohif/app", "0.0.1", "sha512-" + "A" * 86 + "==")
    root = tmp_path / "viewer"
    with pytest.raises(InstallError, match="refused"):
        install(root, pin, tarball=tmp_path / "app.tgz")
    assert not root.exists()
    assert list(tmp_path.iterdir()) == [tmp_path / "app.tgz"]  # no staging left


def test_a_tarball_without_a_dist_is_refused(tmp_path: Path) -> None:
    pin = tarball(tmp_path / "other.tgz", {"package/index.js": b"module.exports = 1"})
    with pytest.raises(InstallError, match=r"no package/dist/index\.html"):
        install(tmp_path / "viewer", pin, tarball=tmp_path / "other.tgz")
    assert installed(tmp_path / "viewer") is None


def test_rebase_fails_when_a_release_moved_its_base(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_bytes(b"<html><script src='app.js'></script></html>")
    with pytest.raises(ValueError, match="does not name its files from /"):
        rebase(tmp_path)


def test_the_command_refuses_a_tarball_of_another_integrity(tmp_path: Path) -> None:
    ohif_like(tmp_path / "app.tgz")
    done = subprocess.run(
        [sys.executable, "-m", "pacsflow", "viewer", "install", "--tarball", "app.tgz",
         "--dir", "viewer"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith("pacsflow viewer install: app.tgz has integrity sha512-")
    assert f"not the pinned {PIN.integrity}" in done.stderr
    assert not (tmp_path / "viewer").exists()


def config_of(settings: Settings) -> dict[str, object]:
    text = app_config(settings)
    body = text.split("})(", 1)[1].rsplit(");", 1)[0]
    origin, config = body.split(", ", 1)
    assert origin == "window.location.origin"
    parsed: dict[str, object] = json.loads(config)
    return parsed


def test_the_viewer_has_one_data_source_per_site(tmp_path: Path) -> None:
    config = config_of(Settings(data_dir=tmp_path, sites=["a", "b"]))
    assert config["routerBasename"] == "/viewer"
    sources = {s["sourceName"]: s["configuration"]["qidoRoot"] for s in config["dataSources"]}  # type: ignore[attr-defined]
    assert sources == {
        "dicomweb": "/dicom-web",
        "site-a": "/sites/a/dicom-web",
        "site-b": "/sites/b/dicom-web",
    }
    assert "oidc" not in config


def test_with_auth_on_the_viewer_signs_in_with_pkce(tmp_path: Path) -> None:
    settings = Settings.model_validate(
        {
            "data_dir": tmp_path,
            "auth": {"issuer": "https://idp.example/realms/pacs", "audience": ["urn:pacsflow"]},
            "console_resource": "urn:pacsflow",
        }
    )
    oidc = config_of(settings)["oidc"]
    assert oidc == [
        {
            "authority": "https://idp.example/realms/pacs",
            "client_id": "pacsflow-console",
            "redirect_uri": "/callback",
            "response_type": "code",
            "scope": "openid",
            "post_logout_redirect_uri": "/signed-out",
            "extraQueryParams": {"resource": "urn:pacsflow"},
        }
    ]


def test_the_vendored_chart_library_is_the_pinned_one() -> None:
    digests = {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(VENDOR.glob("uPlot.*"))
    }
    assert digests == {
        "uPlot.iife.min.js": "19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f",
        "uPlot.min.css": "df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04",
    }
