import sys

from qruntime.cli import main

sys.exit(main())
