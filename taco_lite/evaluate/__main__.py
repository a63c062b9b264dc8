"""`python -m taco_lite.evaluate`: the command line of `taco_lite.evaluate.retrieval.main`."""

from taco_lite.evaluate.retrieval import main

if __name__ == "__main__":
    main()
