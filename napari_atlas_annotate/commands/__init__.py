"""One module per ``atlas-annotate`` command: ``configure(parser)`` and ``run(args)``."""
