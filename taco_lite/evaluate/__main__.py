"""`python -m taco_lite.evaluate`: the command line of `taco_lite.evaluate.cli.main`."""

from taco_lite.evaluate.cli import main

if __name__ == "__main__":
    main()
