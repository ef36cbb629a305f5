"""URIs: what is remote, the local path of a ``file://`` URL, joining a base and a relative path, and
whether an output lies inside an input.

Every rpv2 input and output may be a local path, ``file://``, ``https://``, ``s3://`` or ``gs://``;
these helpers are the one place that tells them apart, shared by the listing, the remote reader and
the publisher.
"""

from __future__ import annotations

import os
import posixpath
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


class OutputInsideInputError(ValueError):
    """An output that is the input it would be computed from, or lies inside it."""


def comparable(uri: str) -> str:
    """``uri`` in the one form every spelling of the same place shares: a local path or ``file://`` URL
    becomes its absolute real path (symlinks resolved), a remote URI keeps its scheme and bucket with its
    path normalized; never a trailing slash (but the root ``/``)."""
    if not is_remote(uri):
        return os.path.realpath(local_path(uri) or ".")
    parsed = urlparse(uri)
    path = posixpath.normpath(parsed.path) if parsed.path.strip("/") else ""
    return f"{parsed.scheme.lower()}://{parsed.netloc}{path}"


def is_within(uri: str, parent: str) -> bool:
    """Whether ``uri`` names ``parent`` itself or a place below it (any spelling: see :func:`comparable`)."""
    child, root = comparable(uri), comparable(parent)
    return child == root or child.startswith(root.rstrip("/") + "/")


def refuse_output_inside_input(input_uri: str, output_uri: str) -> None:
    """Raise :class:`OutputInsideInputError` (one line, naming both) when ``output_uri`` is ``input_uri``
    or lies inside it: outputs never overwrite inputs."""
    if is_within(output_uri, input_uri):
        where = "is" if comparable(output_uri) == comparable(input_uri) else "is inside"
        raise OutputInsideInputError(
            f"output {output_uri} {where} the input {input_uri}: outputs never overwrite inputs; "
            "choose an output outside it"
        )
