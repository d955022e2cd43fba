"""qdsketch: a class-conditional stroke model for Quick, Draw! sketches.

Importing the package is cheap: torch, matplotlib, imageio and Rich are
imported only by the modules that need them.
"""

__version__ = "0.3.0"
