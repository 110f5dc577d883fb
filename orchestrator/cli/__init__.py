"""The command line: one module per command family, and the composition root (`session`) that builds what a command runs with."""
