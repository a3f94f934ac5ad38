"""skiplab: skip connections explained with numbers from real networks."""

__version__ = "0.1.0"
