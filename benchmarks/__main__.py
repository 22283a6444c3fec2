"""``python -m benchmarks``: run the benchmarks (see :mod:`benchmarks.bench`)."""

import sys

from benchmarks.bench import main

sys.exit(main())
