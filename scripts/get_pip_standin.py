# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stand-in for the get-pip script ansible-test downloads (its host is unreachable here).

scripts/setup.sh copies this file to ~/.ansible/test/cache/get_pip_24_2.py next to the pip
24.2 wheel. ansible-test runs it inside each fresh sanity virtualenv, with pip install options
and get-pip's own --no-setuptools / --no-wheel flags; pip is run straight from its wheel.
"""

from __future__ import annotations

import glob
import os
import sys


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    wheels = sorted(glob.glob(os.path.join(here, "pip-24.2-*.whl")))
    if not wheels:
        sys.exit("pip 24.2 wheel missing in %s: run `make setup`" % here)
    args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
    sys.path.insert(0, wheels[0])
    from pip._internal.cli.main import main as pip_main  # pylint: disable=import-outside-toplevel

    sys.exit(pip_main(["install", "--find-links", here] + args))


if __name__ == "__main__":
    main()
