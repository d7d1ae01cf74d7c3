"""`python -m clearinghouse`: the command line. An edge at the package's top only because
Python looks for `__main__` there; the import contracts count it with the edges."""

from clearinghouse.edges.cli import main

raise SystemExit(main())
