"""`python -m taco_lite.course`: the command line of `taco_lite.course.assignments.main`."""

from taco_lite.course.assignments import main

if __name__ == "__main__":
    main()
