"""Skips by probe: a test that needs a kernel feature names it, and skips, with the probe's reason, only where
the running kernel lacks it. No other skip hides a failure."""

from __future__ import annotations

import pytest

from pybpfmap.features import Feature, kernel_release


def needs(*wanted: Feature) -> None:
    """Skip the calling test unless the kernel offers every feature in ``wanted``."""
    for feature in wanted:
        answer = feature.answer()
        if not answer.available:
            since = f"Linux {feature.since}+" if feature.since else "no release"
            pytest.skip(f"kernel {kernel_release()} lacks {feature.description} ({since}): {answer.reason}")
