"""The ``microaunet`` command line: thin commands that parse, validate settings and call the library."""
