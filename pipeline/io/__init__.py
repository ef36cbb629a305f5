"""URIs, resumable remote reads and the one atomic publish, on Beam FileSystems."""
