"""``python -m akool_lab.cli``: the same as the ``akool-lab`` command."""

import sys

from akool_lab.cli import main

sys.exit(main())
