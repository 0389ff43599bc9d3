"""Download public sample images once, check them, keep them in a cache.

Files are pinned to a commit of their public GitHub repository and to a SHA-256,
so a changed or damaged download is refused instead of shown.  Set
``NAPARI_WBCSEG_DATA_MIRROR`` (a URL or folder holding ``<dataset>/<path>``) to
fetch from a local copy; tests use that with ``../shared/data``.
"""
from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .atomic import atomic_path

RAW_URL = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"
TIMEOUT_S = 30


@dataclass(frozen=True)
class RemoteFile:
    dataset: str  # folder name of the dataset (cache and mirror layout)
    repo: str
    commit: str
    path: str
    sha256: str

    @property
    def url(self) -> str:
        return RAW_URL.format(repo=self.repo, commit=self.commit, path=urllib.parse.quote(self.path))


_ZHENG = ("segmentation_WBC", "zxaoyou/segmentation_WBC")
_BCISC = ("BCISC", "fpklipic/BCISC", "9e08a0e1e4b4042543a45ae75e76672a0d0da3e2")
_D1 = "56e0b0aac0f6111b05c5699e2d8e97911a9611fe"
_D2 = "c512e560a2fe5a9c5dd85a180a323956616b6265"

REGISTRY: dict[str, RemoteFile] = {
    "bcisc/neut/1-1.jpg": RemoteFile(*_BCISC, "original-images/neut/1-1.jpg",
                                     "5f87c8a4a87436f87ccc4aac99b6edb6ffe487f1cf36128405f859f1ec791297"),
    "bcisc/neut/1-1.png": RemoteFile(*_BCISC, "original-images/neut/1-1.png",
                                     "f249d92855781e95feb7999aa5dc94d50dae598cc6c55298bf4ef5dd744022e6"),
    "bcisc/lymp/1-1.jpg": RemoteFile(*_BCISC, "original-images/lymp/1-1.jpg",
                                     "b373ee2c17e590a27fca1aa3d3638f84d4ee31230d601b4f1457d5cdb94586b4"),
    "bcisc/lymp/1-1.png": RemoteFile(*_BCISC, "original-images/lymp/1-1.png",
                                     "3de58a2893317732dd8e544f0f49c1ef2e797fe9cd5bc3bf8e9b1935b615f4c9"),
    "zheng/d1/001.bmp": RemoteFile(*_ZHENG, _D1, "Dataset 1/001.bmp",
                                   "f35ef4e068ec811acf4ef27aa4221cc9a87805c83565e017b439fa92fca7b2bf"),
    "zheng/d1/001.png": RemoteFile(*_ZHENG, _D1, "Dataset 1/001.png",
                                   "7b0b147608ddd8ef872bf2257ed532be4ed9544201f4500468b2676cc7824dbe"),
    "zheng/d2/004.bmp": RemoteFile(*_ZHENG, _D2, "Dataset 2/004.bmp",
                                   "d698290b8d2f3e4b4ed388fa4ab1fba7c9f7626c02c8e015be2534fe533749e8"),
    "zheng/d2/004.png": RemoteFile(*_ZHENG, _D2, "Dataset 2/004.png",
                                   "b43b130ad34fe17b6b80ef947a497a498eadf03ca1ee977c09062ee0d1ce407b"),
}


class DownloadError(RuntimeError):
    """A sample file could not be fetched or failed its checksum.

    ``target`` is where the file belongs in the cache (a user can put it there by hand),
    ``reason`` the cause in a few words, ``offline`` whether the source was unreachable."""

    def __init__(self, message: str, *, target: Path, reason: str, offline: bool):
        super().__init__(message)
        self.target, self.reason, self.offline = target, reason, offline

    @property
    def hint(self) -> str:
        """What the user can do, in one short sentence."""
        return (f"put {self.target.name} at {self.target} or set "
                "NAPARI_WBCSEG_DATA_MIRROR to a folder holding the datasets")


def cache_dir() -> Path:
    env = os.environ.get("NAPARI_WBCSEG_CACHE")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("napari-wbcseg")) / "data"


def source_url(item: RemoteFile, mirror: str | None = None) -> str:
    mirror = mirror if mirror is not None else os.environ.get("NAPARI_WBCSEG_DATA_MIRROR")
    if not mirror:
        return item.url
    if "://" not in mirror:  # a plain folder
        return (Path(mirror).resolve() / item.dataset / item.path).as_uri()
    return f"{mirror.rstrip('/')}/{item.dataset}/{urllib.parse.quote(item.path)}"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(key: str, *, mirror: str | None = None) -> Path:
    """Return the local path of a registered sample file, downloading it if needed."""
    try:
        item = REGISTRY[key]
    except KeyError:
        raise KeyError(f"unknown sample file {key!r}; known: {', '.join(REGISTRY)}") from None
    target = cache_dir() / item.dataset / item.path
    if target.is_file() and sha256_of(target) == item.sha256:
        return target
    url = source_url(item, mirror)
    try:
        with atomic_path(target, allow_empty=True) as tmp:
            with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:
                while block := resp.read(1 << 20):
                    out.write(block)
            got = sha256_of(Path(tmp))
            if got != item.sha256:  # raised inside the block: the cache keeps what it had
                reason = (f"{item.path} from {url} failed its checksum "
                          f"(expected {item.sha256[:12]}..., got {got[:12]}...)")
                raise DownloadError(reason, target=target, reason=reason, offline=False)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = str(getattr(exc, "reason", exc))
        # the way out first: a shortened message still says what to do
        raise DownloadError(
            f"could not download {item.path} ({reason}): check the internet connection, "
            f"put the file at {target} or use the offline synthetic sample; source {url}",
            target=target, reason=reason, offline=True) from None
    return target
