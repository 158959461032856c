"""The plan: which cells to measure (cells), the workload catalog and profiles (catalog),
the hosts and their interpreters (inventory), and per-host calibration (calibration)."""
