__version__ = "0.1.0"


def code_digest() -> str:
    """sha256 (16 hex) of the package's Python sources: what keys reused results (study arms, cached
    baseline fits) besides the version string, which does not change with every fix."""
    from pathlib import Path

    from mdcli.artifacts import tree_sha256

    return tree_sha256(Path(__file__).parent, "*.py")[:16]
