"""`python -m taco_lite.downstream`: the command line of `taco_lite.downstream.cli.main`."""

from taco_lite.downstream.cli import main

if __name__ == "__main__":
    main()
