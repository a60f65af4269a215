"""``python -m edgecl.cli``: the ``edgecl`` command."""

import sys

from edgecl.cli.main import main

sys.exit(main())
