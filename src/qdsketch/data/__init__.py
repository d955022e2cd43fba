"""The data side: Quick, Draw! files in, datasets out, in layers that import only downward.

- ``drawings``: ``Drawings`` (stroke-3, ragged) and ``Skipped``, with the ragged
  operations; ``scan``: their compiled kernels (numba, loaded on first use).
- ``dataset``: ``Dataset``, its splits and shards, and the checks every dataset
  passes, whichever file it came from.
- the readers of one file: ``lines`` (one ndjson line: parse and check), ``fast``
  (the compiled path for Google's simplified files, behind the simple one),
  ``ndjson`` (a whole file, gzipped or not) and ``sketchrnn`` (``.npz``);
  ``sources`` finds a class's files in a data directory and reads them.
- ``pool``: an order-keeping process pool; ``plan``: what to read and how to split it.
- the two dataset formats side by side: ``npz`` (one file) and ``shards`` (a directory).
- on top: ``preprocess`` (build, write and load a dataset) and ``download``.

docs/architecture.md draws the layers; tests/test_architecture.py holds them to it.
"""
