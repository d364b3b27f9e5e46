"""Core tests import the pack's pure-torch ``fusion`` package directly.

The repo root is appended, never prepended, to ``sys.path``: the pack has a
subpackage named ``nodes``, and ComfyUI (put first by the host tier) must keep
getting its own top-level ``nodes`` module.
"""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.append(ROOT)
