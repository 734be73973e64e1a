"""The ``melp`` command line: one module per subcommand (see :mod:`melp.cli.main`)."""
