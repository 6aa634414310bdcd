"""``python -m mailsift``."""

import sys

from mailsift.interfaces.cli.main import main

sys.exit(main())
