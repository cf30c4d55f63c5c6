"""SimCLR Studio's engine: data -> augment -> model/loss -> run store -> evaluation.

Never imports streamlit; the dashboard and the CLI are two clients of the same functions.
"""

__version__ = "0.1.0"
