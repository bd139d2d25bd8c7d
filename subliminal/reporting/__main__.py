"""`python -m subliminal.reporting [--check]`: regenerate README.md and docs/ from the CSVs."""

import sys

from subliminal.reporting.readme import main

sys.exit(main())
