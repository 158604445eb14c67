import sys

from arithlab.cli import main

sys.exit(main())
