"""Click-and-track evaluation on held-out synthetic videos (same as ``python -m sam2_plugins.train.evaluate``).

    python scripts/evaluate.py --model micro-synthetic --cells 8 --scenes 8
"""

from sam2_plugins.train.evaluate import main

if __name__ == "__main__":
    raise SystemExit(main())
