"""The pack's main job: panoramas from a trained model (adaptive-terrain-
diffusion's terrain U-Net, ``demo.terrain``; the weights come from its PyPI
package) and from the built-in reference model (``refmodel``), sampled with
the pack's own ``fusion`` code and compared on coherence metrics.
``python -m demo --help``."""
