import sys

from interlive.cli import main

sys.exit(main())
