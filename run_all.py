#!/usr/bin/env python
"""Run zegbench suites: ``python run_all.py --suite NAME`` (see README)."""
import sys

from zegbench.harness.cli import main

if __name__ == "__main__":
    sys.exit(main())
