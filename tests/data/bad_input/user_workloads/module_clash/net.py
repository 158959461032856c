"""A module named as a built-in workload module."""
