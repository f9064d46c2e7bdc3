"""The version, in a module of its own so that any module can name it without importing the
package (whose lazy names reach every layer)."""

__version__ = "0.1.0"
