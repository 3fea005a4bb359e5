"""Stage 4, solved layout -> the layout dataset (xarray / NetCDF) and its summary.

Owns the layout dataset: how it is written, read back (its resource table:
:mod:`.resources`) and summarised for the user.
"""
