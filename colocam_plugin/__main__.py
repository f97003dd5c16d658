"""``python -m colocam_plugin`` is the ``colocam`` command."""

import sys

from colocam_plugin.cli.main import main

sys.exit(main())
