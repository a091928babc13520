"""The ``pgpis`` command line: one module per subcommand (see ``main.SUBCOMMANDS``)."""
