"""``python -m zegbench`` runs the command line."""
import sys

from zegbench.cli import main

sys.exit(main())
