"""The pack's main job on a built-in default: panoramas from the reference
model (``refmodel``) with the pack's own ``fusion`` code, compared on
coherence metrics.  ``python -m demo --help``."""
