"""`python -m taco_lite.train`: the command line of `taco_lite.train.loop.main`."""

from taco_lite.train.loop import cli

if __name__ == "__main__":
    cli()
