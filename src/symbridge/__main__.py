"""`python -m symbridge ...`: the same command as `symbridge ...`."""

from symbridge.cli import main

if __name__ == "__main__":
    main()
