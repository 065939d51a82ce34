"""aufacs: compare facial action unit detectors (EAC-Net, JAA-Net, ME-GraphAU) on one protocol."""

__version__ = "0.1.0"
