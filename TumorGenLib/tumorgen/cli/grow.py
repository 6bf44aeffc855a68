"""``tumorgen grow``: being built (placeholder so the command table stays importable)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("grow", help="(not built yet)", description="Not built yet.")
    p.set_defaults(func=lambda args: 2)
