"""`python -m gradsight ...`: the same command line as `gradsight ...`."""

from gradsight.cli import main

if __name__ == "__main__":
    main()
