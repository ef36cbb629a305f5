"""URIs: what is remote, the local path of a ``file://`` URL, joining a base and a relative path.

Every rpv2 input and output may be a local path, ``file://``, ``https://``, ``s3://`` or ``gs://``;
these helpers are the one place that tells them apart, shared by the listing, the remote reader and
the publisher.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse


def is_remote(url: str) -> bool:
    """True for a URL with a scheme other than ``file`` (a one-letter scheme is a Windows drive)."""
    scheme = urlparse(url).scheme
    return len(scheme) > 1 and scheme != "file"


def local_path(url: str) -> str:
    """The filesystem path of a local path or ``file://`` URL."""
    if url.startswith("file://"):
        return urlparse(url).path
    return url


def resolve(base_url: str, relpath: str) -> str:
    """Join a base URL (https, s3, local path or file://) and a listing's relative path."""
    relpath = relpath.strip().lstrip("/")
    if is_remote(base_url) or base_url.startswith("file://"):
        return base_url.rstrip("/") + "/" + relpath
    return os.path.join(base_url, relpath)


def join(base: str, *parts: str) -> str:
    """``base/part/...`` with one slash between parts, for any URI (posix separators)."""
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])
