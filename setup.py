"""Package discovery (everything else is in pyproject.toml).

The repository's top-level ``models/`` folder (shipped pretrained models) installs as
the package ``edgetp.models`` so that a wheel carries them.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["edgetp", "edgetp.*", "firmware_gen", "firmware_gen.*", "deploy", "deploy.*"])
    + ["edgetp.models"],
    package_dir={"edgetp.models": "models"},
)
