"""Stage 4, solved layout -> the layout dataset (xarray / NetCDF) and its summary.

Owns the layout dataset: how it is written, read back and summarised for the user.
"""
