"""The browser app: a static folder (page, ONNX Runtime Web, the styles as ONNX) that any static
host serves, and a local server for it (`fast-nst web`).

ONNX Runtime Web's WebAssembly build is 14 MB, too big to ship inside our package; it is fetched
once from the npm registry (pinned version, checked against the registry's SHA-512) into the
cache, or taken from a folder or `npm pack` tarball the user names (`--ort-web`) when offline.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import io
import json
import os
import shutil
import tarfile
import tempfile
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import ClassVar

from ..backends import ort_session
from ..errors import UserError
from ..export import cache_dir, cached_onnx
from ..files import refuse_to_replace
from ..styles import builtin_style, builtin_styles, looks_like_a_name

ORT_WEB_VERSION = "1.30.0"
ORT_WEB_URL = f"https://registry.npmjs.org/onnxruntime-web/-/onnxruntime-web-{ORT_WEB_VERSION}.tgz"
ORT_WEB_SHA512 = "q0y+JrrtukXSzsBWEMccVfqX25LRmosXHF+CaRJmg8pZClzcV7svNc4rKY3jL02Vb7QmRMDs1SigqR4CXAfKYQ=="
# What the page loads: the API module, and the WebAssembly runtime (SIMD; threads where allowed).
ORT_WEB_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
PAGE_FILES = ("index.html", "app.mjs")
APP_ENTRIES = {*PAGE_FILES, "ort", "models", "styles.json"}  # all that an app folder holds


@dataclass(frozen=True)
class Site:
    path: Path
    styles: list[str]
    size_bytes: int


@dataclass(frozen=True)
class _Style:
    name: str
    onnx: Path
    about: str


def ort_web_files(source: Path | None = None) -> Path:
    """The folder holding ORT_WEB_FILES: from `source` (a folder, its dist/, or a .tgz), else the cache."""
    if source is None:
        folder = cache_dir() / f"onnxruntime-web-{ORT_WEB_VERSION}"
        if not _has_runtime(folder):
            _unpack(_download(), folder)
        return folder
    if source.is_file():
        folder = cache_dir() / f"onnxruntime-web-{hashlib.sha256(source.read_bytes()).hexdigest()[:16]}"
        if not _has_runtime(folder):
            _unpack(source.read_bytes(), folder, str(source))
        return folder
    for folder in (source, source / "dist", source / "node_modules" / "onnxruntime-web" / "dist"):
        if _has_runtime(folder):
            return folder
    raise UserError(
        f"{source}: no ONNX Runtime Web files here ({ORT_WEB_FILES[-1]} in it or in its dist/ folder); "
        f"get them with `npm pack onnxruntime-web@{ORT_WEB_VERSION}`"
    )


def _has_runtime(folder: Path) -> bool:
    return all((folder / name).is_file() for name in ORT_WEB_FILES)


def _download() -> bytes:
    offline = f"offline, pass --ort-web with the .tgz from `npm pack onnxruntime-web@{ORT_WEB_VERSION}`"
    try:
        with urllib.request.urlopen(ORT_WEB_URL, timeout=60) as response:
            data = response.read()
    except OSError as e:
        raise UserError(f"{ORT_WEB_URL}: cannot download ONNX Runtime Web ({e}); {offline}") from None
    if base64.b64encode(hashlib.sha512(data).digest()).decode() != ORT_WEB_SHA512:
        raise UserError(f"{ORT_WEB_URL}: the download does not match the registry's SHA-512; {offline}")
    return data


def _unpack(tgz: bytes, folder: Path, source: str = ORT_WEB_URL) -> None:
    """ORT_WEB_FILES out of an npm package tarball (package/dist/...), written whole or not at all."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as archive:
            for name in ORT_WEB_FILES:
                member = archive.extractfile(f"package/dist/{name}")
                if member is None:
                    raise KeyError(name)
                tmp = folder / f".{name}.{os.getpid()}.tmp"
                tmp.write_bytes(member.read())
                tmp.replace(folder / name)
    except (tarfile.TarError, KeyError, OSError) as e:
        raise UserError(f"{source}: not an onnxruntime-web package tarball ({e})") from None


def _style(ref: str) -> _Style:
    """A style the app offers: a built-in name, a model file (.pt) or an exported .onnx file."""
    if looks_like_a_name(ref):
        style = builtin_style(ref)
        return _Style(style.name, cached_onnx(style.pt), style.painting)
    path = Path(ref)
    if not path.is_file():
        raise UserError(f"{path}: no such model file")
    if path.suffix.lower() == ".onnx":
        ort_session(path, "cpu", fp16=False)  # a damaged file fails here, not later in the browser
        return _Style(path.stem, path, "your exported model")
    return _Style(path.stem, cached_onnx(path), "your model")


# Of every built-in style, the one the page starts on (it selects the first): the fast network, the
# one that keeps up with a camera in a browser (one thread where the host does not isolate the page).
FIRST_STYLE = "mosaic_fast"


def _an_app(folder: Path) -> bool:
    """Whether `folder` holds what `build_site` writes and nothing else (no user's files, no model
    being exported)."""
    return folder.is_dir() and {p.name for p in folder.iterdir()} <= APP_ENTRIES


def build_site(
    out: Path, styles: Sequence[str] = (), ort_web: Path | None = None, overwrite: bool = False
) -> Site:
    """Write the app to `out`: the page, ONNX Runtime Web, and each style (default: every built-in
    one) as fp32 ONNX. Built beside `out` and renamed into place, so a failure leaves nothing half
    made and an existing folder is replaced only with `overwrite`."""
    out = Path(out)
    refuse_to_replace(out, overwrite)
    if out.exists() and not _an_app(out):  # --overwrite replaced whatever was there, a user's folder
        raise UserError(f"{out}: not an app this command wrote; --overwrite replaces only such a folder")
    chosen = [_style(ref) for ref in (styles or sorted(builtin_styles(), key=lambda n: n != FIRST_STYLE))]
    names = [s.name for s in chosen]
    if len(set(names)) < len(names):
        raise UserError(f"two styles would share a name in the app ({', '.join(names)}); rename a file")
    runtime = ort_web_files(ort_web)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        page = resources.files(__package__)
        for name in PAGE_FILES:
            (tmp / name).write_bytes(page.joinpath(name).read_bytes())
        (tmp / "ort").mkdir()
        for name in ORT_WEB_FILES:
            shutil.copyfile(runtime / name, tmp / "ort" / name)
        (tmp / "models").mkdir()
        for style in chosen:
            shutil.copyfile(style.onnx, tmp / "models" / f"{style.name}.onnx")
        manifest = [{"name": s.name, "file": f"models/{s.name}.onnx", "about": s.about} for s in chosen]
        (tmp / "styles.json").write_text(json.dumps(manifest, indent=2) + "\n")
        tmp.chmod(0o755)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            out.replace(old / out.name)
            tmp.replace(out)
            shutil.rmtree(old)
        else:
            tmp.replace(out)
    except OSError as e:
        raise UserError(f"{out}: cannot write the app ({e.strerror or e})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return Site(out, names, size)


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files, with the headers that make the page cross-origin isolated (ONNX Runtime Web
    then runs on several threads) and the WebAssembly and module MIME types browsers insist on."""

    extensions_map: ClassVar[dict[str, str]] = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".mjs": "text/javascript",
    }

    def end_headers(self) -> None:
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()

    def log_message(self, *args: object) -> None:
        pass


def server(folder: Path, host: str, port: int) -> http.server.ThreadingHTTPServer:
    """A server for the app in `folder`, bound but not yet serving (serve_forever)."""
    handler = functools.partial(_Handler, directory=str(folder))
    try:
        return http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as e:
        reason = e.strerror or e
        raise UserError(
            f"{host}:{port}: cannot serve there ({reason}); use another --host or --port"
        ) from None
