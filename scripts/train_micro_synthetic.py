"""Train the bundled micro-synthetic model (same as ``python -m sam2_plugins.train.micro_synthetic``).

    python scripts/train_micro_synthetic.py --out src/sam2_plugins/weights/
"""

from sam2_plugins.train.micro_synthetic import main

if __name__ == "__main__":
    raise SystemExit(main())
