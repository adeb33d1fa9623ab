"""The options of ``fairsearch search`` and ``resume``, apart from the engine: building the
parser must not import torch and Optuna, so that the command starts Ray before it does."""

from __future__ import annotations

import argparse

__all__ = ["configure_resume", "configure_search"]


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", default=None,
                        help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray)")
    parser.add_argument("--quiet", action="store_true", help="no live progress line")  # fmt: skip


def configure_search(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", metavar="SPEC", help="run spec (YAML)")
    parser.add_argument("--storage", default="runs",
                        help="parent of run folders: a path (shared by all nodes on a cluster) "
                             "or a URI such as s3://bucket/prefix")  # fmt: skip
    _common(parser)


def configure_resume(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run folder of an interrupted search")
    _common(parser)
