"""The toolkit's version, in a module of its own so that any stage can record it without importing the
package root (whose lazy re-export of the Python API would point back at every stage)."""

__version__ = "0.1.0"
