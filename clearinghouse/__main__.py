"""`python -m clearinghouse`: the command line. An edge at the package's top only because
Python looks for `__main__` there; the import contract counts it with the edges."""

import sys

from clearinghouse.edges.cli import main

sys.exit(main())
