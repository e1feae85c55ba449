"""``python -m st_multitask`` runs the ``stmt`` command line."""

from st_multitask.cli import main

if __name__ == "__main__":
    main(prog_name="stmt")
