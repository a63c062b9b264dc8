"""`python -m taco_lite.sweep`: the command line of `taco_lite.sweep.run.main`."""

from taco_lite.sweep.run import main

if __name__ == "__main__":
    main()
