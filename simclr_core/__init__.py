"""SimCLR Studio's engine: data -> augment -> model/loss -> run store -> evaluation.

Never imports streamlit; the dashboard and the CLI are two clients of the same functions.
"""

import os

# OpenMP threads that spin while waiting starve each other (and the dashboard's server
# threads) on small CPUs: measured 10-50x slowdowns of small ops on a loaded 2-core machine.
# Must be set before torch is first imported; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
