"""Install melp into a virtual environment with uv, falling back to pip.

Used by the Makefile: ``python3 tools/install.py [--compile] .venv torch==2.13.0 -e .`` (``--compile``
also writes the bytecode of every installed module). uv resolves and installs the stack in seconds where
pip takes minutes (docs/performance.md, "Install"). uv does not read pip's configuration, so the
indexes, find-links and constraints pip is configured with (files and ``PIP_*`` variables, as
``pip config list`` shows them) are passed to it; on such machines the CPU torch wheel lies in a
find-links folder. Where uv cannot be installed or fails, the same requirements go through pip.

uv takes each version's files from the first index that has that version, where pip picks the most
specific wheel across all indexes; so a pure ``py3-none-any`` wheel can win over a platform wheel
that bundles a native library (here soundfile without libsndfile, which breaks ``import wfdb``).
After a uv install every module of the pure-wheel distributions is imported once, and a distribution
that fails to import is reinstalled by pip.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

#: pip configuration keys and the uv option each becomes (values are whitespace-separated lists)
PIP_TO_UV = {
    "index-url": "--index-url",
    "extra-index-url": "--extra-index-url",
    "find-links": "--find-links",
    "constraint": "--constraint",
}


def pip_settings(pip: Path) -> dict[str, list[str]]:
    """The values of :data:`PIP_TO_UV`'s keys in pip's effective configuration (environment last)."""
    listing = subprocess.run([str(pip), "config", "list"], capture_output=True, text=True, check=False).stdout
    settings: dict[str, list[str]] = {}
    for line in listing.splitlines():
        name, _, value = line.partition("=")
        key = name.rsplit(".", 1)[-1]
        if key in PIP_TO_UV:
            settings[key] = shlex.split(value)[0].split() if value else []
    return settings


def uv_options(settings: dict[str, list[str]]) -> list[str]:
    options = []
    for key, flag in PIP_TO_UV.items():
        for value in settings.get(key, []):
            options += [flag, value]
    # like pip, take the best matching version across all indexes, not the first index that has the name
    return [*options, "--index-strategy", "unsafe-best-match"]


#: run in the venv: print the distributions of pure-wheel modules that fail to import
IMPORT_CHECK = """
import importlib, importlib.metadata as md, warnings
warnings.simplefilter("ignore")
pure = set()
for dist in md.distributions():
    tags = [line for line in (dist.read_text("WHEEL") or "").splitlines() if line.startswith("Tag:")]
    if tags and all(tag.endswith("-none-any") for tag in tags):
        pure.add(dist.metadata["Name"])
broken = set()
for module, dists in md.packages_distributions().items():
    if module.isidentifier() and not module.startswith("_") and pure.intersection(dists):
        try:
            importlib.import_module(module)
        except Exception:
            broken.update(f"{name}=={md.version(name)}" for name in dists)
print(" ".join(sorted(broken)))
"""


def repair(python: Path, pip: Path) -> bool:
    """Reinstall with pip the distributions whose modules fail to import after a uv install."""
    # the check imports most of the stack anyway: let it leave the bytecode behind for the first real run
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    check = subprocess.run([str(python), "-c", IMPORT_CHECK], capture_output=True, text=True, check=False, env=env)
    broken = check.stdout.split()
    if not broken:
        return True
    print(f"these do not import after the uv install, reinstalling them with pip: {' '.join(broken)}", flush=True)
    return run([str(pip), "install", "--quiet", "--force-reinstall", "--no-deps", *broken])


def run(command: list[str], env: dict[str, str] | None = None) -> bool:
    print("+", shlex.join(command), flush=True)
    return subprocess.run(command, env=env, check=False).returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("venv", type=Path)
    parser.add_argument("--compile", action="store_true", help="compile all installed modules to bytecode")
    parser.add_argument("requirements", nargs=argparse.REMAINDER, help="what to install, as for pip install")
    args = parser.parse_args()
    python, pip = args.venv / "bin" / "python", args.venv / "bin" / "pip"
    if not python.exists() and not run([sys.executable, "-m", "venv", str(args.venv)]):
        return 1
    uv = args.venv / "bin" / "uv"
    if uv.exists() or run([str(pip), "install", "--quiet", "uv"]):
        settings = pip_settings(pip)
        env = dict(os.environ)
        if cert := os.environ.get("PIP_CERT"):
            env.setdefault("SSL_CERT_FILE", cert)
        command = [str(uv), "pip", "install", "--quiet", "--python", str(python), *uv_options(settings)]
        if args.compile:
            command.append("--compile-bytecode")
        command += args.requirements
        if run(command, env) and repair(python, pip):
            return 0
        print("uv failed; installing with pip instead", file=sys.stderr)
    return 0 if run([str(pip), "install", "--quiet", *args.requirements]) else 1


if __name__ == "__main__":
    sys.exit(main())
