"""A PATH without some programs: the system's own (/usr/bin, /bin) minus the ones a test takes away."""

from __future__ import annotations

import os
import shutil

# What a machine without a container engine or kind lacks.
ENGINES_AND_KIND = ("docker", "podman", "nerdctl", "kind")


def programs_dir(folder, without=ENGINES_AND_KIND, extra=()):
    """Fill ``folder`` with symlinks to the programs of /usr/bin and /bin except ``without``, plus the
    ``extra`` programs (names looked up in PATH, or paths); return it as a string for PATH."""
    os.makedirs(str(folder), exist_ok=True)
    for system in ("/usr/bin", "/bin"):
        if not os.path.isdir(system):
            continue
        for entry in sorted(os.listdir(system)):
            target = os.path.join(str(folder), entry)
            if entry not in without and not os.path.lexists(target):
                os.symlink(os.path.join(system, entry), target)
    for program in extra:
        path = program if os.path.isabs(program) else shutil.which(program)
        target = os.path.join(str(folder), os.path.basename(path))
        if os.path.lexists(target):
            os.unlink(target)
        os.symlink(path, target)
    return str(folder)
