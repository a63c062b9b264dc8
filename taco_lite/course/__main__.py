"""`python -m taco_lite.course`: the command line of `taco_lite.course.cli.main`."""

from taco_lite.course.cli import main

if __name__ == "__main__":
    main()
