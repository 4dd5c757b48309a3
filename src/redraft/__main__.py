"""``python -m redraft``: the admin command line (:mod:`redraft.admin`)."""

import sys

from redraft.admin import main

sys.exit(main())
