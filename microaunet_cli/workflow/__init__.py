"""Whole workflows built from the commands' library functions (the built-in demo)."""
