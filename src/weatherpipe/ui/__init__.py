"""The CLI's one output layer: the consoles, the progress displays and the log handler.

User data (paths, CSV headers, city names, error messages) is never read as Rich markup or
emoji codes: the consoles have markup and emoji off, styles come only from `Text` parts.
"""
