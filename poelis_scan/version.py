"""The version, in a module of its own so that any module can name it without importing the
package (whose lazy names reach every layer)."""

__version__ = "0.1.0"
# Where this project lives (pyproject.toml [project.urls] Repository; a test keeps the two
# equal). Hooks, recipes and report links point here, never at a package index.
__url__ = "https://github.com/poelis-scan/poelis-scan"
