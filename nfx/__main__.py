import sys

from nfx.cli import main

sys.exit(main())
