"""Vigil: an open-source child-safety platform.

The package is split into rooms (see docs/architecture.md); lower rooms (`media`, `signals`)
know nothing of the database, the web or the command line.
"""

import os

# Vigil's numpy work is many small matrix products (PDQ's 64 x 64 sampling): a BLAS thread
# pool costs far more than it saves there (measured 9 ms vs 23-114 ms per image on 2 cores)
# and fights the worker processes for the cores. Set before numpy loads; an explicit setting
# in the environment still wins.
for _variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

__version__ = "0.1.0"
