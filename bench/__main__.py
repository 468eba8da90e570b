"""``python3 -m bench``: the side-by-side benchmark with Flagger (see ``bench/run.py``)."""

from bench.run import main

if __name__ == "__main__":
    raise SystemExit(main())
