import sys

from canaryd.cli import main

sys.exit(main())
