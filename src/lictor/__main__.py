"""``python -m lictor`` runs the command line."""

from lictor.cli import main

if __name__ == "__main__":
    main()
