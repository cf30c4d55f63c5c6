"""SimCLR Studio's engine: data -> augment -> model/loss -> run store -> evaluation.

Never imports streamlit; the dashboard and the CLI are two clients of the same functions.
Importing it changes nothing in the process: the entry points call
:func:`simclr_core.process.configure_process` for the process-wide settings.
"""

__version__ = "0.1.0"
