"""``python -m livepeer.codegen``."""

import sys

from livepeer.codegen.cli import main

sys.exit(main())
