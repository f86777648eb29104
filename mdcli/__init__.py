__version__ = "0.1.0"


def code_digest() -> str:
    """sha256 (16 hex) of the package's Python sources: what keys reused results (study arms, cached
    baseline fits) besides the version string, which does not change with every fix."""
    import hashlib
    from pathlib import Path

    root = Path(__file__).parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]
