"""What the dl_python role needs to know about a host before it touches it, as JSON.

    python3 venv_state.py '{"venv": PATH, "tmpdir": PATH, "want": {NAME: VERSION}, "wheelhouses": [DIR]}'

python: this interpreter's version (the venv is made with it); installed: {distribution: version}
from the venv's *.dist-info folders (no import: quick, and works on a broken venv); missing: the
wanted distributions not installed at their version (a local tag such as +cpu ignored);
free_mb: free space where the venv and pip's temp folder will be (nearest existing parent);
cpu_torch_wheel: a CPU torch wheel of the wanted version for this Python in a local wheelhouse
folder, if any.
"""

import glob
import json
import os
import re
import shutil
import sys


def existing_parent(path):
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return path


def installed(venv):
    found = {}
    for info in glob.glob(os.path.join(venv, "lib", "python3*", "site-packages", "*.dist-info")):
        match = re.match(r"(.+?)-([^-]+)\.dist-info$", os.path.basename(info))
        if match:
            found[match.group(1).lower().replace("_", "-")] = match.group(2)
    return found


def main():
    request = json.loads(sys.argv[1])
    venv, tmpdir, want = request["venv"], request["tmpdir"], request["want"]
    tag = "cp%d%d" % sys.version_info[:2]
    packages = installed(venv)
    places = {name: existing_parent(path) for name, path in (("venv", venv), ("tmp", tmpdir))}
    cpu_wheels = [
        wheel
        for folder in request.get("wheelhouses", [])
        if os.path.isdir(folder)
        for wheel in glob.glob(os.path.join(folder, f"torch-{want.get('torch')}+cpu-{tag}-*.whl"))
    ]
    state = {
        "python": "%d.%d" % sys.version_info[:2],
        "venv_exists": os.path.exists(os.path.join(venv, "bin", "python")),
        "installed": packages,
        "missing": sorted(
            name
            for name, version in want.items()
            if packages.get(name.lower(), "").split("+")[0] != version
        ),
        "free_mb": {k: shutil.disk_usage(p).free // 2**20 for k, p in places.items()},
        "same_filesystem": os.stat(places["venv"]).st_dev == os.stat(places["tmp"]).st_dev,
        "cpu_torch_wheel": sorted(cpu_wheels)[0] if cpu_wheels else None,
    }
    print(json.dumps(state, sort_keys=True))


if __name__ == "__main__":
    main()
