"""`python -m taco_lite.train`: the command line of `taco_lite.train.cli.main`."""

from taco_lite.train.cli import cli

if __name__ == "__main__":
    cli()
