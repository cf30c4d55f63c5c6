"""One module per CLI subcommand: ``add_parser(subparsers)`` registers its flags and ``run``."""


def spec_help(default: str) -> str:
    """The --data help shared by every subcommand that reads a dataset spec."""
    return (
        "dataset spec: 'shapes[:unlabeled|train|test][?n=N&seed=S]' (built in, offline), "
        "'stl10[:unlabeled|train|test|train+unlabeled]', 'cifar10[:train|test]' (downloaded by torchvision), "
        "or a path to an image folder (one subfolder per class, or flat) / .zip / .tar / .tar.gz / .tgz, "
        f"optionally with '?split=train|test&test_fraction=0.2&seed=0' to carve a held-out split (default: {default})"
    )
