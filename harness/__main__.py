"""``python -m harness``: the same entry point as the ``harness`` command."""

from harness.cli import main

if __name__ == "__main__":
    main()
