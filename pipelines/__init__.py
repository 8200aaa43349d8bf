"""Jobs that move data between the stages of recsys, and the ``recsys`` command line."""
